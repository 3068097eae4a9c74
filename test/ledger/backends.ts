// The ledger backends every ledger test runs against: SQLite always, PostgreSQL when
// MESHCA_TEST_POSTGRES_URL is set (required, and failing when absent, if MESHCA_REQUIRE_POSTGRES=1).
// Each test gets a fresh ledger (a new file, or a new PostgreSQL schema) and raw SQL to tamper with it.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';

export interface RawSql {
  /** Runs one statement with $1, $2… placeholders; returns its rows. */
  exec(sql: string, params?: readonly (string | number | null)[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export interface FreshLedgerDb {
  readonly url: string;
  readonly sql: RawSql;
  cleanup(): Promise<void>;
}

export interface Backend {
  readonly name: 'sqlite' | 'postgres';
  /** Why this backend's tests are skipped, if they are. */
  readonly skip?: string;
  fresh(): Promise<FreshLedgerDb>;
}

const PG_URL = process.env.MESHCA_TEST_POSTGRES_URL;
const PG_REQUIRED = process.env.MESHCA_REQUIRE_POSTGRES === '1';

export const sqliteBackend: Backend = {
  name: 'sqlite',
  async fresh() {
    const dir = mkdtempSync(join(tmpdir(), 'meshca-ledger-'));
    const path = join(dir, 'nested', 'meshca.db');
    let db: DatabaseSync | undefined;
    const open = (): DatabaseSync => {
      db ??= new DatabaseSync(path);
      db.exec('PRAGMA busy_timeout = 5000');
      return db;
    };
    return {
      url: `sqlite:${path}`,
      sql: {
        async exec(text, params = []) {
          const stmt = open().prepare(text.replace(/\$\d+/g, '?'));
          return stmt.columns().length > 0 ? (stmt.all(...params) as Record<string, unknown>[]) : (stmt.run(...params), []);
        },
        async close() {
          db?.close();
          db = undefined;
        },
      },
      async cleanup() {
        if (db?.isOpen) db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

function withSearchPath(url: string, schema: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

export const postgresBackend: Backend = {
  name: 'postgres',
  ...(PG_URL ? {} : PG_REQUIRED ? {} : { skip: 'MESHCA_TEST_POSTGRES_URL is not set' }),
  async fresh() {
    if (!PG_URL) throw new Error('MESHCA_REQUIRE_POSTGRES=1 but MESHCA_TEST_POSTGRES_URL is not set: run "source .ci/postgres.sh" first');
    const schema = `t_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(`SET search_path = ${schema}`);
    return {
      url: withSearchPath(PG_URL, schema),
      sql: {
        async exec(text, params = []) {
          return (await admin.query(text, [...params])).rows as Record<string, unknown>[];
        },
        async close() {},
      },
      async cleanup() {
        await admin.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => undefined);
        await admin.end();
      },
    };
  },
};

export const BACKENDS: readonly Backend[] = [sqliteBackend, postgresBackend];
