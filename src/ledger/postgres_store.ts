// The PostgreSQL backend (`--db postgres://…`, the pg package): migrations at open, and every write
// under a transaction-scoped advisory lock so replicas sharing the database keep one chain.

import { createHash } from 'node:crypto';
import pg from 'pg';
import { GENESIS_HASH } from './canonical.ts';
import { redactUrl } from './url.ts';
import type { LedgerQuery } from './ledger.ts';
import {
  anchorFromRow,
  checkpointFromRow,
  HEAD_SQL,
  headFromRow,
  PRUNE_TARGET_SQL,
  RECORD_COLUMNS,
  recordFromRow,
  SCHEMA_V1,
  SCHEMA_VERSION,
  whereClause,
  type ChainAnchor,
  type ChainHead,
  type LedgerStore,
  type StoredCheckpoint,
  type StoredRecord,
  type WriteBatch,
  type Written,
  ALREADY_DURABLE,
  INIT_META_SQL,
  META_SQL,
  metaFromRows,
  NEWEST_CHECKPOINT_SQL,
} from './store.ts';

export const DEFAULT_POOL_SIZE = 4;
const CONNECT_TIMEOUT_MS = 5000;

export interface PostgresStoreOptions {
  readonly poolSize?: number;
}

/** A 64-bit advisory lock key per schema, so two ledgers in one database don't serialize each other. */
function lockKeyFor(schema: string): string {
  return createHash('sha256').update(`meshca-ledger:${schema}`).digest().readBigInt64BE(0).toString();
}

const INSERT_RECORDS = `INSERT INTO meshca_ledger_records (${RECORD_COLUMNS})
  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])`;

const UNNEST_RECORDS = `unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
  AS u(seq, time_ms, type, decision, spiffe_id, namespace, service_account, pod_name, serial, event, prev_hash, hash)`;

const GUARDED_APPEND = `WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock($13::bigint)),
  ok AS MATERIALIZED (
    SELECT 1 AS ok FROM lock
    WHERE (SELECT hash FROM meshca_ledger_records WHERE seq = $14::bigint) = $15::text
      AND NOT EXISTS (SELECT 1 FROM meshca_ledger_records WHERE seq > $14::bigint)),
  ins AS (
    INSERT INTO meshca_ledger_records (${RECORD_COLUMNS})
    SELECT u.* FROM ${UNNEST_RECORDS} CROSS JOIN ok
    RETURNING seq),
  cp AS (
    INSERT INTO meshca_ledger_checkpoints (seq, head_hash, time_ms, key_id, signature)
    SELECT $16::bigint, $17::text, $18::bigint, $19::text, $20::text FROM ok WHERE $16::bigint IS NOT NULL
    RETURNING seq)
  SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM cp) AS checkpoints`;

const UNIQUE_VIOLATION = '23505';

function recordArrays(rs: readonly StoredRecord[]): unknown[] {
  return [
    rs.map((r) => r.seq),
    rs.map((r) => r.timeMs),
    rs.map((r) => r.type),
    rs.map((r) => r.decision),
    rs.map((r) => r.spiffeId),
    rs.map((r) => r.namespace),
    rs.map((r) => r.serviceAccount),
    rs.map((r) => r.podName),
    rs.map((r) => r.serial),
    rs.map((r) => r.eventJson),
    rs.map((r) => r.prevHash),
    rs.map((r) => r.hash),
  ];
}

export class PostgresStore implements LedgerStore {
  readonly where: string;
  readonly #pool: pg.Pool;
  #lockKey = '';

  private constructor(url: string, opts: PostgresStoreOptions) {
    this.where = redactUrl(url);
    this.#pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? DEFAULT_POOL_SIZE, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    // An idle connection dying (server restart) must not crash the CA; the next use reports it.
    this.#pool.on('error', () => undefined);
  }

  static async open(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const store = new PostgresStore(url, opts);
    try {
      await store.#migrate();
    } catch (err) {
      await store.#pool.end().catch(() => undefined);
      throw err;
    }
    return store;
  }

  async #migrate(): Promise<void> {
    await this.#transaction(async (c) => {
      const schema = (await c.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0]?.schema ?? 'public';
      this.#lockKey = lockKeyFor(schema);
      // Replicas starting together would race CREATE TABLE IF NOT EXISTS; take the lock first.
      await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [this.#lockKey]);
      for (const sql of SCHEMA_V1) await c.query(sql);
      await c.query("INSERT INTO meshca_ledger_meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO NOTHING", [SCHEMA_VERSION]);
    });
  }

  async #transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => {
        broken = e;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** A PostgreSQL commit returns once it is durable (synchronous_commit), so there is no second phase. */
  async write(build: (head: ChainHead) => WriteBatch, expected?: ChainHead): Promise<Written> {
    if (expected && expected.seq > 0 && (await this.#writeOptimistically(build(expected), expected))) return ALREADY_DURABLE;
    await this.#transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [this.#lockKey]);
      const head = headFromRow((await c.query(HEAD_SQL)).rows[0], GENESIS_HASH);
      const batch = build(head);
      const rs = batch.records;
      if (rs.length > 0) await c.query(INSERT_RECORDS, recordArrays(rs));
      const cp = batch.checkpoint;
      if (cp) {
        await c.query('INSERT INTO meshca_ledger_checkpoints (seq, head_hash, time_ms, key_id, signature) VALUES ($1, $2, $3, $4, $5)', [cp.seq, cp.headHash, cp.timeMs, cp.keyId, cp.signature]);
      }
    });
    return ALREADY_DURABLE;
  }

  /**
   * One statement, one round trip: appends the batch only if the head is still `expected`. Under
   * the advisory lock the guard is exact; and should a stale snapshot ever pass it, the primary key
   * on seq refuses the duplicate, so the chain cannot fork. False means "read the head and retry".
   */
  async #writeOptimistically(batch: WriteBatch, expected: ChainHead): Promise<boolean> {
    const rs = batch.records;
    if (rs.length === 0) return false;
    const cp = batch.checkpoint;
    try {
      const res = await this.#pool.query<{ inserted: string }>(GUARDED_APPEND, [
        ...recordArrays(rs),
        this.#lockKey,
        expected.seq,
        expected.hash,
        cp?.seq ?? null,
        cp?.headHash ?? null,
        cp?.timeMs ?? null,
        cp?.keyId ?? null,
        cp?.signature ?? null,
      ]);
      return Number(res.rows[0]?.inserted ?? 0) === rs.length;
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) return false;
      throw err;
    }
  }

  async query(q: LedgerQuery): Promise<StoredRecord[]> {
    const { sql, params } = whereClause(q, (i) => `$${i}`);
    const order = q.order === 'asc' ? 'ASC' : 'DESC';
    const res = await this.#pool.query(`SELECT ${RECORD_COLUMNS} FROM meshca_ledger_records ${sql} ORDER BY seq ${order} LIMIT $${params.length + 1}`, [...params, q.limit]);
    return res.rows.map(recordFromRow);
  }

  async scan(afterSeq: number, limit: number): Promise<StoredRecord[]> {
    const res = await this.#pool.query(`SELECT ${RECORD_COLUMNS} FROM meshca_ledger_records WHERE seq > $1 ORDER BY seq ASC LIMIT $2`, [afterSeq, limit]);
    return res.rows.map(recordFromRow);
  }

  async checkpoints(): Promise<StoredCheckpoint[]> {
    const res = await this.#pool.query('SELECT seq, head_hash, time_ms, key_id, signature FROM meshca_ledger_checkpoints ORDER BY seq ASC');
    return res.rows.map(checkpointFromRow);
  }

  async newestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const row = (await this.#pool.query(NEWEST_CHECKPOINT_SQL)).rows[0];
    return row ? checkpointFromRow(row) : undefined;
  }

  async anchor(): Promise<ChainAnchor> {
    return anchorFromRow((await this.#pool.query(HEAD_SQL)).rows[0], GENESIS_HASH);
  }

  async meta(): Promise<Record<string, string>> {
    return metaFromRows((await this.#pool.query(META_SQL)).rows);
  }

  async initMeta(entries: Readonly<Record<string, string>>): Promise<void> {
    await this.#transaction(async (c) => {
      for (const [k, v] of Object.entries(entries)) await c.query(INIT_META_SQL('$1', '$2'), [k, v]);
    });
  }

  async prune(beforeMs: number): Promise<{ removed: number; anchorSeq: number }> {
    return this.#transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [this.#lockKey]);
      const anchor = anchorFromRow((await c.query(HEAD_SQL)).rows[0], GENESIS_HASH);
      const target = (await c.query(PRUNE_TARGET_SQL('$1', '$2'), [beforeMs, anchor.seq])).rows[0];
      if (!target) return { removed: 0, anchorSeq: anchor.seq };
      const cp = checkpointFromRow(target);
      const removed = (await c.query('DELETE FROM meshca_ledger_records WHERE seq <= $1', [cp.seq])).rowCount ?? 0;
      await c.query('DELETE FROM meshca_ledger_checkpoints WHERE seq < $1', [cp.seq]);
      const setMeta = 'INSERT INTO meshca_ledger_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value';
      await c.query(setMeta, ['anchor_seq', String(cp.seq)]);
      await c.query(setMeta, ['anchor_hash', cp.headHash]);
      return { removed, anchorSeq: cp.seq };
    });
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined);
  }
}
