# Sourced by .ci/run (and by hand: `source .ci/postgres.sh`): starts a throwaway PostgreSQL cluster
# on 127.0.0.1 and exports MESHCA_TEST_POSTGRES_URL so the ledger tests also run against PostgreSQL.
# It never touches an existing cluster: everything lives in a fresh temp dir, stopped on exit.

# runuser and useradd live in sbin, which a non-login shell's PATH may lack.
case ":$PATH:" in *":/usr/sbin:"*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac

meshca_pg_bindir() {
  local ctl
  ctl="$(command -v pg_ctl 2>/dev/null || true)"
  if [ -z "$ctl" ]; then
    ctl="$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1 || true)"
  fi
  [ -n "$ctl" ] && dirname "$(readlink -f "$ctl")"
}

meshca_pg_free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

meshca_pg_start() {
  local bindir port dir runas=()
  bindir="$(meshca_pg_bindir)"
  if [ -z "$bindir" ]; then
    echo "postgres.sh: pg_ctl not found (install the Debian package postgresql)" >&2
    return 1
  fi
  dir="$(mktemp -d "${TMPDIR:-/tmp}/meshca-pg.XXXXXX")"
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root: run the cluster as the postgres user (made if missing).
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    chown postgres "$dir"
    chmod 0700 "$dir"
    runas=(runuser -u postgres --)
  fi
  port="$(meshca_pg_free_port)"
  "${runas[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    return 1
  }
  "${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c max_connections=200" start >/dev/null || {
    cat "$dir/server.log" >&2
    return 1
  }
  "${runas[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres meshca_test
  MESHCA_PG_DIR="$dir"
  MESHCA_PG_BINDIR="$bindir"
  MESHCA_PG_RUNAS="${runas[*]}"
  export MESHCA_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/meshca_test"
  export MESHCA_REQUIRE_POSTGRES=1
  echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir)"
}

meshca_pg_stop() {
  if [ -n "${MESHCA_PG_DIR:-}" ] && [ -d "$MESHCA_PG_DIR/data" ]; then
    # shellcheck disable=SC2086
    ${MESHCA_PG_RUNAS:-} "$MESHCA_PG_BINDIR/pg_ctl" -D "$MESHCA_PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$MESHCA_PG_DIR"
  fi
}

if meshca_pg_start; then
  trap meshca_pg_stop EXIT
else
  echo "postgres.sh: could not start PostgreSQL; the PostgreSQL ledger tests will fail (MESHCA_REQUIRE_POSTGRES=1)" >&2
  export MESHCA_REQUIRE_POSTGRES=1
fi
