// The hash chain on top of any LedgerStore: group commit, chain hashes, signed checkpoints and
// retention. Every write failure becomes LEDGER_UNAVAILABLE, so the CA fails closed.

import { describeError, MeshcaError } from '../errors/index.ts';
import { SECOND_MS, type Clock, type Timer } from '../time/index.ts';
import { encodeEvent, recordHash } from './canonical.ts';
import type { AppendResult, LedgerEvent } from './events.ts';
import { GroupCommit, type Flushed } from './group_commit.ts';
import type { Ledger, LedgerQuery, LedgerRecord, PruneResult, VerifyReport } from './ledger.ts';
import { signCheckpoint, type LedgerKey } from './ledger_key.ts';
import { indexedColumnsOf, type ChainHead, type LedgerStore, type StoredCheckpoint, type StoredRecord, type Written } from './store.ts';
import { verifyHashChain } from './verify.ts';
import type { KeyObject } from 'node:crypto';

export const DEFAULT_CHECKPOINT_EVERY = 1000;
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 60 * SECOND_MS;
/** Records per transaction at most; more wait for the next one. */
export const MAX_BATCH = 1000;
/** How often an idle ledger looks whether a time-based checkpoint is due. */
const CHECKPOINT_POLL_MS = 5 * SECOND_MS;

export interface ChainedLedgerOptions {
  readonly clock: Clock;
  /** Signs checkpoints; without it none are written (e.g. a one-off CLI append). */
  readonly ledgerKey?: LedgerKey;
  /** Public keys checkpoints may be signed by; the ledger key's own is always included. */
  readonly verifyKeys?: readonly KeyObject[];
  readonly checkpointEvery?: number;
  readonly checkpointIntervalMs?: number;
}

/** A checkpoint job signs the head when due, or whenever there is something uncovered if forced. */
type Job = { readonly kind: 'event'; readonly event: LedgerEvent } | { readonly kind: 'checkpoint'; readonly force: boolean };

/** Short reason from a driver error: its first line, no connection string (it may hold a password). */
function driverReason(err: unknown): string {
  const text = describeError(err);
  return text.split('\n')[0]!.replace(/postgres(ql)?:\/\/\S+/g, 'postgres://…').slice(0, 200);
}

export function ledgerUnavailable(where: string, doing: string, err: unknown): MeshcaError {
  if (err instanceof MeshcaError && err.code === 'LEDGER_UNAVAILABLE') return err;
  return new MeshcaError('LEDGER_UNAVAILABLE', `ledger ${where} could not ${doing}: ${driverReason(err)}`, { cause: err });
}

export class ChainedLedger implements Ledger {
  readonly #store: LedgerStore;
  readonly #opts: ChainedLedgerOptions;
  readonly #commit: GroupCommit<Job, AppendResult>;
  readonly #timer: Timer | undefined;
  #closed = false;
  /** The head as this process last wrote it; another replica may have moved on since. */
  #head: ChainHead | undefined;

  constructor(store: LedgerStore, opts: ChainedLedgerOptions) {
    this.#store = store;
    this.#opts = opts;
    this.#commit = new GroupCommit((jobs) => this.#write(jobs), MAX_BATCH);
    if (opts.ledgerKey) {
      this.#timer = opts.clock.every(Math.min(CHECKPOINT_POLL_MS, this.#intervalMs()), () => {
        this.#commit.submit({ kind: 'checkpoint', force: false }).catch(() => undefined);
      });
    }
  }

  #intervalMs(): number {
    return this.#opts.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS;
  }

  async append(event: LedgerEvent): Promise<AppendResult> {
    if (this.#closed) throw new MeshcaError('LEDGER_UNAVAILABLE', `ledger ${this.#store.where} is closed`);
    // Encode before queueing so a malformed event fails alone, not its whole batch.
    encodeEvent(event);
    return this.#commit.submit({ kind: 'event', event });
  }

  async #write(jobs: readonly Job[]): Promise<Flushed<AppendResult>> {
    const results: AppendResult[] = [];
    const key = this.#opts.ledgerKey;
    const now = this.#opts.clock.now();
    const forceCheckpoint = jobs.some((j) => j.kind === 'checkpoint' && j.force);
    let next: ChainHead | undefined;
    let written: Written;
    try {
      written = await this.#store.write((head: ChainHead) => {
        results.length = 0;
        const records: StoredRecord[] = [];
        let seq = head.seq;
        let prev = head.hash;
        for (const job of jobs) {
          if (job.kind !== 'event') continue;
          seq += 1;
          const eventJson = encodeEvent(job.event);
          const hash = recordHash(seq, prev, eventJson);
          records.push({ ...indexedColumnsOf(job.event), seq, prevHash: prev, hash, eventJson });
          results.push({ seq, hash });
          prev = hash;
        }
        const uncovered = seq - head.lastCheckpointSeq;
        // Due after N records, or once the oldest record no checkpoint covers is T old.
        const due =
          uncovered > 0 &&
          (forceCheckpoint || uncovered >= (this.#opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY) || now - (head.oldestUncoveredTimeMs ?? now) >= this.#intervalMs());
        const checkpoint: StoredCheckpoint | undefined = key && due ? signCheckpoint(key, seq, prev, now) : undefined;
        next = {
          seq,
          hash: prev,
          lastCheckpointSeq: checkpoint ? seq : head.lastCheckpointSeq,
          oldestUncoveredTimeMs: checkpoint || uncovered === 0 ? undefined : (head.oldestUncoveredTimeMs ?? now),
        };
        return { records, ...(checkpoint ? { checkpoint } : {}) };
      }, this.#head);
      this.#head = next;
    } catch (err) {
      this.#head = undefined;
      throw ledgerUnavailable(this.#store.where, 'record', err);
    }
    // A checkpoint job has no result of its own; give it a placeholder so indexes line up.
    let i = 0;
    const where = this.#store.where;
    return {
      results: jobs.map((j) => (j.kind === 'event' ? results[i++]! : { seq: 0, hash: '' })),
      durable: written.durable.catch((err: unknown) => {
        this.#head = undefined;
        throw ledgerUnavailable(where, 'make the record durable', err);
      }),
    };
  }

  async query(q: LedgerQuery): Promise<LedgerRecord[]> {
    let rows: StoredRecord[];
    try {
      rows = await this.#store.query(q);
    } catch (err) {
      throw ledgerUnavailable(this.#store.where, 'answer the query', err);
    }
    return rows.map((r) => ({ seq: r.seq, prevHash: r.prevHash, hash: r.hash, eventJson: r.eventJson, event: JSON.parse(r.eventJson) as LedgerEvent }));
  }

  async verify(): Promise<VerifyReport> {
    const keys = [...(this.#opts.verifyKeys ?? []), ...(this.#opts.ledgerKey ? [this.#opts.ledgerKey.publicKey] : [])];
    try {
      return await verifyHashChain(this.#store, keys);
    } catch (err) {
      throw ledgerUnavailable(this.#store.where, 'be read for verification', err);
    }
  }

  async prune(beforeMs: number): Promise<PruneResult> {
    // Sign the head first so the newest old-enough records have a checkpoint to prune up to.
    if (this.#opts.ledgerKey) await this.#commit.submit({ kind: 'checkpoint', force: true });
    let result: { removed: number; anchorSeq: number };
    try {
      result = await this.#store.prune(beforeMs);
    } catch (err) {
      throw ledgerUnavailable(this.#store.where, 'prune', err);
    }
    if (result.removed > 0) {
      await this.append({
        type: 'ca',
        timeMs: this.#opts.clock.now(),
        event: 'ledger-prune',
        actor: 'retention',
        detail: { anchorSeq: result.anchorSeq, removed: result.removed, beforeMs },
      });
    }
    return result;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.cancel();
    try {
      await this.#commit.drain();
      // Leave every record covered by a signed checkpoint when we can.
      if (this.#opts.ledgerKey) await this.#commit.submit({ kind: 'checkpoint', force: true }).catch(() => undefined);
    } finally {
      await this.#store.close();
    }
  }
}
