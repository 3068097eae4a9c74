// Opening a ledger from its --db URL: sqlite:<path> or postgres://…, or `memory:` for benchmarks
// only. Never falls back to anything that would let an issuance go unrecorded.

import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { MeshcaError } from '../errors/index.ts';
import { systemClock, type Clock } from '../time/index.ts';
import { ChainedLedger, ledgerUnavailable } from './chained_ledger.ts';
import type { AppendResult, LedgerEvent, LedgerWriter } from './events.ts';
import type { Ledger } from './ledger.ts';
import { headAnchorPath } from './binding.ts';
import { loadOrCreateLedgerKey, readLedgerPublicKey, type LedgerKey } from './ledger_key.ts';
import type { LedgerStore } from './store.ts';
import { isPostgresUrl, redactUrl } from './url.ts';

export interface ClosableLedgerWriter extends LedgerWriter {
  close(): Promise<void>;
}

export interface OpenLedgerOptions {
  readonly clock?: Clock;
  /**
   * CA key directory of a writer: its ledger-key.pem (made on first use) signs checkpoints, the
   * ledger must be bound to that key (a new one is bound to it), and ledger-head.json beside it
   * anchors the newest signed head.
   */
  readonly keysDir?: string;
  /** CA key directory of a reader: only checks the ledger is bound to its ledger key (if it has one). */
  readonly bindTo?: string;
  /** The CA's current root key id, recorded when the ledger is created. */
  readonly rootKeyId?: string;
  /** Start a new, empty ledger although this CA's ledger key anchored another one (--new-ledger). */
  readonly newLedger?: boolean;
  /** The checkpoint key itself (tests); takes precedence over keysDir. */
  readonly ledgerKey?: LedgerKey;
  /** Extra public keys checkpoints may be signed by (verification of a ledger another CA wrote). */
  readonly verifyKeys?: readonly KeyObject[];
  /** Sign a checkpoint after this many records… */
  readonly checkpointEvery?: number;
  /** …or once this much time has passed with records uncovered. */
  readonly checkpointIntervalMs?: number;
  /** For readers (query, verify, export): refuse to create an empty SQLite ledger. */
  readonly mustExist?: boolean;
  /** SQLite: how long a write waits for another process's lock. */
  readonly busyTimeoutMs?: number;
  /** PostgreSQL: connections in the pool. */
  readonly poolSize?: number;
}

/** An in-memory ledger (`memory:`) for benchmarks: no chain, no durability, lost on exit. */
export function memoryLedger(): ClosableLedgerWriter & { readonly events: LedgerEvent[] } {
  const events: LedgerEvent[] = [];
  return {
    events,
    async append(event: LedgerEvent): Promise<AppendResult> {
      events.push(event);
      return { seq: events.length, hash: '' };
    },
    async close() {},
  };
}

// Each backend is loaded only when a URL names it: a command that opens no ledger (the agent)
// loads neither pg nor node:sqlite.
async function openStore(url: string, opts: OpenLedgerOptions): Promise<LedgerStore> {
  if (url.startsWith('sqlite:')) {
    const { SqliteStore } = await import('./sqlite_store.ts');
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path.length === 0) throw new MeshcaError('BAD_CONFIG', '--db sqlite: needs a file path, e.g. sqlite:keys/ledger.db');
    try {
      return new SqliteStore(path, { ...(opts.busyTimeoutMs !== undefined ? { busyTimeoutMs: opts.busyTimeoutMs } : {}), ...(opts.mustExist ? { mustExist: true } : {}) });
    } catch (err) {
      if (err instanceof MeshcaError) throw err;
      throw ledgerUnavailable(url, 'be opened', err);
    }
  }
  if (isPostgresUrl(url)) {
    const { PostgresStore } = await import('./postgres_store.ts');
    try {
      return await PostgresStore.open(url, opts.poolSize !== undefined ? { poolSize: opts.poolSize } : {});
    } catch (err) {
      throw ledgerUnavailable(redactUrl(url), 'be opened', err);
    }
  }
  throw new MeshcaError('BAD_CONFIG', `--db "${redactUrl(url)}" is not a ledger URL; use sqlite:<path> or postgres://…`);
}

/** The ledger a CA uses unless --db says otherwise: one per key directory, so never another CA's. */
export const DEFAULT_LEDGER_FILE = 'ledger.db';

export function defaultLedgerUrl(keysDir: string): string {
  return `sqlite:${join(keysDir, DEFAULT_LEDGER_FILE)}`;
}

/** --db as given, or the default beside the key directory. */
export function ledgerUrlFor(db: string | undefined, keysDir: string): string {
  return db ?? defaultLedgerUrl(keysDir);
}

/** Opens the full ledger (append, query, verify, prune, close) behind `url`. */
export async function openLedger(url: string, opts: OpenLedgerOptions = {}): Promise<Ledger> {
  const ledgerKey = opts.ledgerKey ?? (opts.keysDir !== undefined ? loadOrCreateLedgerKey(opts.keysDir) : undefined);
  const store = await openStore(url, opts);
  const ledger = new ChainedLedger(store, {
    clock: opts.clock ?? systemClock,
    ...(ledgerKey ? { ledgerKey } : {}),
    ...(opts.verifyKeys ? { verifyKeys: opts.verifyKeys } : {}),
    ...(opts.checkpointEvery !== undefined ? { checkpointEvery: opts.checkpointEvery } : {}),
    ...(opts.checkpointIntervalMs !== undefined ? { checkpointIntervalMs: opts.checkpointIntervalMs } : {}),
    ...(opts.keysDir !== undefined ? { anchorFile: headAnchorPath(opts.keysDir) } : {}),
  });
  try {
    const keysDir = opts.keysDir ?? opts.bindTo;
    if (keysDir !== undefined) {
      await ledger.bind({
        keysDir,
        ...(opts.rootKeyId ? { rootKeyId: opts.rootKeyId } : {}),
        ...(opts.newLedger ? { newLedger: true } : {}),
        ...(opts.keysDir === undefined ? { readOnly: { publicKey: readLedgerPublicKey(keysDir) } } : {}),
      });
    }
  } catch (err) {
    await ledger.abandon();
    throw err;
  }
  return ledger;
}

/** The write side for the CA and `meshca sign`; `memory:` only where losing records is the point. */
export async function openLedgerWriter(url: string, opts: OpenLedgerOptions = {}): Promise<ClosableLedgerWriter> {
  if (url === 'memory:') return memoryLedger();
  return openLedger(url, opts);
}
