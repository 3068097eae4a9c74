// What a storage backend does for the ledger: serialized write transactions, indexed reads, and
// pruning. It never computes hashes or decides checkpoints; chained_ledger.ts does, once for all.

import type { LedgerEvent } from './events.ts';
import type { LedgerQuery } from './ledger.ts';

/** The indexed columns, derived from the event; verify checks they still agree with it. */
export interface IndexedColumns {
  readonly timeMs: number;
  readonly type: LedgerEvent['type'];
  readonly decision: string | null;
  readonly spiffeId: string | null;
  readonly namespace: string | null;
  readonly serviceAccount: string | null;
  readonly podName: string | null;
  readonly serial: string | null;
}

export interface StoredRecord extends IndexedColumns {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly eventJson: string;
}

export interface StoredCheckpoint {
  /** Record count covered: the checkpoint's head is record `seq`. */
  readonly seq: number;
  readonly headHash: string;
  readonly timeMs: number;
  /** SHA-256 hex of the ledger key's SubjectPublicKeyInfo DER. */
  readonly keyId: string;
  /** Base64 DER ECDSA signature over checkpointMessage(). */
  readonly signature: string;
}

/** Where the chain starts: record 0 with GENESIS_HASH, or the checkpoint retention pruned to. */
export interface ChainAnchor {
  readonly seq: number;
  readonly hash: string;
}

/** The state a write transaction sees once it holds the ledger's write lock. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
  readonly lastCheckpointSeq: number;
  /** Time of the oldest record no checkpoint covers yet (undefined when all are covered). */
  readonly oldestUncoveredTimeMs: number | undefined;
}

export interface WriteBatch {
  readonly records: readonly StoredRecord[];
  readonly checkpoint?: StoredCheckpoint;
}

/** A committed write; `durable` resolves once it is on disk (rejects if that failed). */
export interface Written {
  readonly durable: Promise<void>;
}

export const ALREADY_DURABLE: Written = Object.freeze({ durable: Promise.resolve() });

export interface LedgerStore {
  /** A printable name without credentials, for messages. */
  readonly where: string;
  /**
   * Runs one write transaction holding the ledger-wide write lock (across processes and replicas):
   * reads the head, lets `build` decide what to write, writes it, commits durably. `expected` is
   * the head this process last wrote: a backend may write against it optimistically in one round
   * trip, provided it falls back to reading the head (and calling `build` again) when it moved.
   */
  write(build: (head: ChainHead) => WriteBatch, expected?: ChainHead): Promise<Written>;
  query(q: LedgerQuery): Promise<StoredRecord[]>;
  /** Records in ascending seq after `afterSeq`, for verification. */
  scan(afterSeq: number, limit: number): Promise<StoredRecord[]>;
  checkpoints(): Promise<StoredCheckpoint[]>;
  /** The checkpoint with the highest seq, or undefined when none is signed yet. */
  newestCheckpoint(): Promise<StoredCheckpoint | undefined>;
  anchor(): Promise<ChainAnchor>;
  /**
   * Under the write lock: picks the newest checkpoint whose record is older than `beforeMs` (and
   * past the current anchor), deletes records up to it and older checkpoints, makes it the anchor.
   */
  prune(beforeMs: number): Promise<{ removed: number; anchorSeq: number }>;
  /** The ledger's metadata (schema version, the CA it is bound to, where its chain was pruned to). */
  meta(): Promise<Readonly<Record<string, string>>>;
  /** Sets each key that is not set yet (first writer wins); never overwrites. */
  initMeta(entries: Readonly<Record<string, string>>): Promise<void>;
  /**
   * Cheap, synchronous: why the store can no longer be written safely (e.g. its SQLite file was
   * deleted or replaced under it), or undefined. Checked before every write and by /readyz.
   */
  health?(): string | undefined;
  close(): Promise<void>;
}

export const NEWEST_CHECKPOINT_SQL = 'SELECT seq, head_hash, time_ms, key_id, signature FROM meshca_ledger_checkpoints ORDER BY seq DESC LIMIT 1';
export const META_SQL = 'SELECT key, value FROM meshca_ledger_meta';
export const INIT_META_SQL = (p1: string, p2: string): string => `INSERT INTO meshca_ledger_meta (key, value) VALUES (${p1}, ${p2}) ON CONFLICT (key) DO NOTHING`;

export function metaFromRows(rows: readonly Record<string, unknown>[]): Record<string, string> {
  return Object.fromEntries(rows.map((r) => [String(r.key), String(r.value)]));
}

/** Serials are stored lower-case hex without separators, however they were typed. */
export function normalizeSerial(serial: string): string {
  return serial.replace(/[:\s]/g, '').toLowerCase();
}

export function indexedColumnsOf(event: LedgerEvent): IndexedColumns {
  const base = { timeMs: event.timeMs, type: event.type };
  switch (event.type) {
    case 'issuance':
      return {
        ...base,
        decision: event.decision,
        spiffeId: event.spiffeId ?? null,
        namespace: event.namespace ?? null,
        serviceAccount: event.serviceAccount ?? null,
        podName: event.podName ?? null,
        serial: event.serial !== undefined ? normalizeSerial(event.serial) : null,
      };
    case 'audit-query':
      return { ...base, decision: event.decision, spiffeId: null, namespace: null, serviceAccount: null, podName: null, serial: null };
    case 'ca':
      return { ...base, decision: null, spiffeId: null, namespace: null, serviceAccount: null, podName: null, serial: null };
    case 'refusals':
      return { ...base, decision: event.decision, spiffeId: null, namespace: null, serviceAccount: null, podName: null, serial: null };
  }
}

export function sameColumns(a: IndexedColumns, b: IndexedColumns): boolean {
  return (
    a.timeMs === b.timeMs &&
    a.type === b.type &&
    a.decision === b.decision &&
    a.spiffeId === b.spiffeId &&
    a.namespace === b.namespace &&
    a.serviceAccount === b.serviceAccount &&
    a.podName === b.podName &&
    a.serial === b.serial
  );
}

/** Shared SQL WHERE builder; `param(i)` renders the i-th placeholder ($1 or ?). */
export function whereClause(q: LedgerQuery, param: (i: number) => string): { sql: string; params: (string | number)[] } {
  const parts: string[] = [];
  const params: (string | number)[] = [];
  const add = (expr: string, value: string | number): void => {
    params.push(value);
    parts.push(expr.replace('?', param(params.length)));
  };
  if (q.spiffeId !== undefined) add('spiffe_id = ?', q.spiffeId);
  if (q.namespace !== undefined) add('namespace = ?', q.namespace);
  if (q.serviceAccount !== undefined) add('service_account = ?', q.serviceAccount);
  if (q.podName !== undefined) add('pod_name = ?', q.podName);
  if (q.serial !== undefined) add('serial = ?', normalizeSerial(q.serial));
  if (q.type !== undefined) add('type = ?', q.type);
  if (q.deniedOnly) parts.push("decision = 'denied'");
  if (q.sinceMs !== undefined) add('time_ms >= ?', q.sinceMs);
  if (q.untilMs !== undefined) add('time_ms < ?', q.untilMs);
  if (q.afterSeq !== undefined) add('seq > ?', q.afterSeq);
  if (q.beforeSeq !== undefined) add('seq < ?', q.beforeSeq);
  return { sql: parts.length > 0 ? `WHERE ${parts.join(' AND ')}` : '', params };
}

export const RECORD_COLUMNS = 'seq, time_ms, type, decision, spiffe_id, namespace, service_account, pod_name, serial, event, prev_hash, hash';

/** Table and index definitions shared by both SQL dialects (BIGINT is INTEGER affinity in SQLite). */
export const SCHEMA_V1: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS meshca_ledger_records (
    seq BIGINT PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    type TEXT NOT NULL,
    decision TEXT,
    spiffe_id TEXT,
    namespace TEXT,
    service_account TEXT,
    pod_name TEXT,
    serial TEXT,
    event TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
  )`,
  // Lookups by identity, pod or namespace return the newest first: (key, seq) serves both.
  'CREATE INDEX IF NOT EXISTS meshca_ledger_by_spiffe_id ON meshca_ledger_records (spiffe_id, seq)',
  'CREATE INDEX IF NOT EXISTS meshca_ledger_by_serial ON meshca_ledger_records (serial)',
  'CREATE INDEX IF NOT EXISTS meshca_ledger_by_namespace ON meshca_ledger_records (namespace, service_account, seq)',
  'CREATE INDEX IF NOT EXISTS meshca_ledger_by_pod ON meshca_ledger_records (pod_name, seq)',
  'CREATE INDEX IF NOT EXISTS meshca_ledger_by_time ON meshca_ledger_records (time_ms)',
  "CREATE INDEX IF NOT EXISTS meshca_ledger_denied ON meshca_ledger_records (seq) WHERE decision = 'denied'",
  `CREATE TABLE IF NOT EXISTS meshca_ledger_checkpoints (
    seq BIGINT PRIMARY KEY,
    head_hash TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
  )`,
  'CREATE TABLE IF NOT EXISTS meshca_ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
];

export const SCHEMA_VERSION = '1';

/** One query for everything a write transaction needs to know; valid in SQLite and PostgreSQL. */
export const HEAD_SQL = `SELECT
  (SELECT seq FROM meshca_ledger_records ORDER BY seq DESC LIMIT 1) AS seq,
  (SELECT hash FROM meshca_ledger_records ORDER BY seq DESC LIMIT 1) AS hash,
  (SELECT seq FROM meshca_ledger_checkpoints ORDER BY seq DESC LIMIT 1) AS cp_seq,
  (SELECT time_ms FROM meshca_ledger_records WHERE seq > COALESCE(
    (SELECT seq FROM meshca_ledger_checkpoints ORDER BY seq DESC LIMIT 1),
    (SELECT CAST(value AS BIGINT) FROM meshca_ledger_meta WHERE key = 'anchor_seq'), 0) ORDER BY seq ASC LIMIT 1) AS uncovered_time,
  (SELECT value FROM meshca_ledger_meta WHERE key = 'anchor_seq') AS anchor_seq,
  (SELECT value FROM meshca_ledger_meta WHERE key = 'anchor_hash') AS anchor_hash`;

type Cell = string | number | bigint | null | undefined;

function num(v: Cell): number {
  return Number(v);
}

function textOrNull(v: Cell): string | null {
  return v === null || v === undefined ? null : String(v);
}

export function anchorFromRow(row: Record<string, Cell> | undefined, genesis: string): ChainAnchor {
  if (!row || row.anchor_seq === null || row.anchor_seq === undefined) return { seq: 0, hash: genesis };
  return { seq: num(row.anchor_seq), hash: String(row.anchor_hash) };
}

export function headFromRow(row: Record<string, Cell> | undefined, genesis: string): ChainHead {
  const anchor = anchorFromRow(row, genesis);
  const hasRecords = row?.seq !== null && row?.seq !== undefined;
  const hasCheckpoint = row?.cp_seq !== null && row?.cp_seq !== undefined;
  return {
    seq: hasRecords ? num(row!.seq) : anchor.seq,
    hash: hasRecords ? String(row!.hash) : anchor.hash,
    lastCheckpointSeq: hasCheckpoint ? num(row!.cp_seq) : anchor.seq,
    oldestUncoveredTimeMs: row?.uncovered_time === null || row?.uncovered_time === undefined ? undefined : num(row.uncovered_time),
  };
}

export function recordFromRow(row: Record<string, Cell>): StoredRecord {
  return {
    seq: num(row.seq),
    timeMs: num(row.time_ms),
    type: String(row.type) as StoredRecord['type'],
    decision: textOrNull(row.decision),
    spiffeId: textOrNull(row.spiffe_id),
    namespace: textOrNull(row.namespace),
    serviceAccount: textOrNull(row.service_account),
    podName: textOrNull(row.pod_name),
    serial: textOrNull(row.serial),
    eventJson: String(row.event),
    prevHash: String(row.prev_hash),
    hash: String(row.hash),
  };
}

export function checkpointFromRow(row: Record<string, Cell>): StoredCheckpoint {
  return { seq: num(row.seq), headHash: String(row.head_hash), timeMs: num(row.time_ms), keyId: String(row.key_id), signature: String(row.signature) };
}

/** The newest checkpoint old enough to prune to, past the current anchor. */
export const PRUNE_TARGET_SQL = (p1: string, p2: string): string =>
  `SELECT c.seq, c.head_hash, c.time_ms, c.key_id, c.signature FROM meshca_ledger_checkpoints c
   JOIN meshca_ledger_records r ON r.seq = c.seq
   WHERE r.time_ms < ${p1} AND c.seq > ${p2} ORDER BY c.seq DESC LIMIT 1`;
