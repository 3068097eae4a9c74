// The SQLite backend (`--db sqlite:<path>`, Node's built-in node:sqlite): WAL mode, a commit is
// durable (WAL fsynced) before write() resolves, BEGIN IMMEDIATE so processes never fork the chain.

import { chmodSync, closeSync, existsSync, fsync, fsyncSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { MeshcaError } from '../errors/index.ts';
import { PRIVATE_FILE_MODE } from '../pki/index.ts';
import { GENESIS_HASH } from './canonical.ts';
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
  type LedgerStore,
  type StoredCheckpoint,
  type StoredRecord,
  type WriteBatch,
  type Written,
  type ChainHead,
  ALREADY_DURABLE,
  INIT_META_SQL,
  META_SQL,
  metaFromRows,
  NEWEST_CHECKPOINT_SQL,
} from './store.ts';

export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

export interface SqliteStoreOptions {
  /** How long a write waits for another process's write lock before failing. */
  readonly busyTimeoutMs?: number;
  /** Refuse to create the file (query and verify must not make an empty ledger). */
  readonly mustExist?: boolean;
}

type Row = Record<string, string | number | bigint | null>;

export class SqliteStore implements LedgerStore {
  readonly where: string;
  readonly #path: string;
  /** The file this connection opened: the path must keep naming it, or nothing more is written. */
  readonly #file: { readonly dev: number; readonly ino: number };
  readonly #db: DatabaseSync;
  readonly #insertRecord: StatementSync;
  readonly #insertCheckpoint: StatementSync;
  readonly #walPath: string | undefined;
  readonly #headStatement: StatementSync;
  #walFd: number | undefined;
  /** The fsync in flight, and the one queued behind it for commits made since it started. */
  #syncing: Promise<void> | undefined;
  #queuedSync: Promise<void> | undefined;
  /** After a failed fsync the kernel may have dropped the pages: nothing is trusted until reopened. */
  #broken: Error | undefined;

  constructor(path: string, opts: SqliteStoreOptions = {}) {
    this.where = `sqlite:${path}`;
    if (!existsSync(path)) {
      if (opts.mustExist) throw new MeshcaError('BAD_CONFIG', `--db sqlite:${path}: there is no ledger at that path`);
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // Create the file ourselves so it is 0600 from the start; SQLite gives -wal/-shm the same mode.
      closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
    }
    try {
      chmodSync(path, PRIVATE_FILE_MODE);
    } catch {
      // Not our file (e.g. a read-only mount for auditors): reading it is still fine.
    }
    this.#path = path;
    this.#db = new DatabaseSync(path);
    const { dev, ino } = statSync(path);
    this.#file = { dev, ino };
    this.#db.exec(`PRAGMA busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS)}`);
    const mode = (this.#db.prepare('PRAGMA journal_mode = WAL').get() as Row | undefined)?.journal_mode;
    if (mode === 'wal') {
      // Durability without blocking: SQLite commits without fsync (NORMAL), and write() then fsyncs
      // the WAL on libuv's thread pool before it resolves, so signing continues meanwhile. A commit
      // whose WAL frames are on disk survives power loss; no append resolves before that.
      this.#walPath = `${path}-wal`;
      this.#db.exec('PRAGMA synchronous = NORMAL');
    } else {
      // No WAL (a filesystem without shared memory): let SQLite fsync every commit itself.
      this.#walPath = undefined;
      this.#db.exec('PRAGMA synchronous = FULL');
    }
    this.#transaction(() => {
      for (const sql of SCHEMA_V1) this.#db.exec(sql);
      this.#db.prepare("INSERT OR IGNORE INTO meshca_ledger_meta (key, value) VALUES ('schema_version', ?)").run(SCHEMA_VERSION);
    });
    this.#insertRecord = this.#db.prepare(`INSERT INTO meshca_ledger_records (${RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#insertCheckpoint = this.#db.prepare('INSERT INTO meshca_ledger_checkpoints (seq, head_hash, time_ms, key_id, signature) VALUES (?, ?, ?, ?, ?)');
    this.#headStatement = this.#db.prepare(HEAD_SQL);
  }

  #transaction<T>(fn: () => T): T {
    // IMMEDIATE takes the write lock at BEGIN, so the head we read cannot move before we commit.
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.#db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  #head(): ChainHead {
    return headFromRow(this.#headStatement.get() as Row | undefined, GENESIS_HASH);
  }

  /**
   * One stat per transaction: if the path no longer names the file we have open (deleted, moved
   * away, or replaced by another file), records would go into a file nobody can find. Renaming the
   * same file back makes the path good again; a different file at the path needs a restart, which
   * checks it against this CA's binding and head anchor before using it.
   */
  health(): string | undefined {
    let now;
    try {
      now = statSync(this.#path, { throwIfNoEntry: false });
    } catch (err) {
      return `ledger file ${this.#path} cannot be checked (${(err as Error).message})`;
    }
    const fix = 'issuance is refused until the same file is back at that path (a different file needs a restart, which checks it is this CA\'s ledger)';
    if (!now) return `ledger file ${this.#path} was deleted or moved away while meshca had it open; ${fix}`;
    if (now.dev !== this.#file.dev || now.ino !== this.#file.ino) return `ledger file ${this.#path} was replaced by another file while meshca had it open; ${fix}`;
    return undefined;
  }

  #assertHealthy(): void {
    const problem = this.health();
    if (problem) throw new MeshcaError('LEDGER_UNAVAILABLE', problem);
  }

  async write(build: (head: ChainHead) => WriteBatch): Promise<Written> {
    if (this.#broken) throw this.#broken;
    this.#assertHealthy();
    this.#transaction(() => {
      const batch = build(this.#head());
      for (const r of batch.records) {
        this.#insertRecord.run(r.seq, r.timeMs, r.type, r.decision, r.spiffeId, r.namespace, r.serviceAccount, r.podName, r.serial, r.eventJson, r.prevHash, r.hash);
      }
      const cp = batch.checkpoint;
      if (cp) this.#insertCheckpoint.run(cp.seq, cp.headHash, cp.timeMs, cp.keyId, cp.signature);
    });
    return this.#walPath === undefined ? ALREADY_DURABLE : { durable: this.#syncAfterCommit() };
  }

  /** Resolves once an fsync that started after this call has finished: one fsync covers many commits. */
  #syncAfterCommit(): Promise<void> {
    if (!this.#syncing) {
      this.#syncing = this.#fsyncWal().finally(() => {
        this.#syncing = undefined;
      });
      return this.#syncing;
    }
    this.#queuedSync ??= this.#syncing.then(
      () => this.#startQueued(),
      () => this.#startQueued(),
    );
    return this.#queuedSync;
  }

  #startQueued(): Promise<void> {
    this.#queuedSync = undefined;
    return this.#syncAfterCommit();
  }

  async #fsyncWal(): Promise<void> {
    if (this.#broken) throw this.#broken;
    try {
      if (this.#walFd === undefined) {
        // The WAL exists once something was committed to it, and stays while our connection is open.
        this.#walFd = openSync(this.#walPath!, 'r');
        // Its directory entry must be durable too, once.
        const dirFd = openSync(dirname(this.#walPath!), 'r');
        try {
          fsyncSync(dirFd);
        } finally {
          closeSync(dirFd);
        }
      }
      const fd = this.#walFd;
      await new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      this.#broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    }
  }

  async query(q: LedgerQuery): Promise<StoredRecord[]> {
    const { sql, params } = whereClause(q, () => '?');
    const order = q.order === 'asc' ? 'ASC' : 'DESC';
    const rows = this.#db.prepare(`SELECT ${RECORD_COLUMNS} FROM meshca_ledger_records ${sql} ORDER BY seq ${order} LIMIT ?`).all(...params, q.limit) as Row[];
    return rows.map(recordFromRow);
  }

  async scan(afterSeq: number, limit: number): Promise<StoredRecord[]> {
    const rows = this.#db.prepare(`SELECT ${RECORD_COLUMNS} FROM meshca_ledger_records WHERE seq > ? ORDER BY seq ASC LIMIT ?`).all(afterSeq, limit) as Row[];
    return rows.map(recordFromRow);
  }

  async checkpoints(): Promise<StoredCheckpoint[]> {
    const rows = this.#db.prepare('SELECT seq, head_hash, time_ms, key_id, signature FROM meshca_ledger_checkpoints ORDER BY seq ASC').all() as Row[];
    return rows.map(checkpointFromRow);
  }

  async newestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const row = this.#db.prepare(NEWEST_CHECKPOINT_SQL).get() as Row | undefined;
    return row ? checkpointFromRow(row) : undefined;
  }

  async anchor(): Promise<ChainAnchor> {
    return anchorFromRow(this.#headStatement.get() as Row | undefined, GENESIS_HASH);
  }

  async meta(): Promise<Record<string, string>> {
    return metaFromRows(this.#db.prepare(META_SQL).all() as Row[]);
  }

  async initMeta(entries: Readonly<Record<string, string>>): Promise<void> {
    this.#assertHealthy();
    const insert = this.#db.prepare(INIT_META_SQL('?', '?'));
    this.#transaction(() => {
      for (const [k, v] of Object.entries(entries)) insert.run(k, v);
    });
    if (this.#walPath !== undefined) await this.#syncAfterCommit();
  }

  async prune(beforeMs: number): Promise<{ removed: number; anchorSeq: number }> {
    this.#assertHealthy();
    const result = this.#transaction(() => {
      const anchor = anchorFromRow(this.#db.prepare(HEAD_SQL).get() as Row | undefined, GENESIS_HASH);
      const target = this.#db.prepare(PRUNE_TARGET_SQL('?', '?')).get(beforeMs, anchor.seq) as Row | undefined;
      if (!target) return { removed: 0, anchorSeq: anchor.seq };
      const cp = checkpointFromRow(target);
      const removed = Number(this.#db.prepare('DELETE FROM meshca_ledger_records WHERE seq <= ?').run(cp.seq).changes);
      this.#db.prepare('DELETE FROM meshca_ledger_checkpoints WHERE seq < ?').run(cp.seq);
      const setMeta = this.#db.prepare('INSERT INTO meshca_ledger_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
      setMeta.run('anchor_seq', String(cp.seq));
      setMeta.run('anchor_hash', cp.headHash);
      return { removed, anchorSeq: cp.seq };
    });
    if (this.#walPath !== undefined) await this.#syncAfterCommit();
    return result;
  }

  async close(): Promise<void> {
    if (this.#walFd !== undefined) closeSync(this.#walFd);
    this.#walFd = undefined;
    if (this.#db.isOpen) this.#db.close();
  }
}
