// The hash chain on top of any LedgerStore: group commit, chain hashes, signed checkpoints and
// retention. Every write failure becomes LEDGER_UNAVAILABLE, so the CA fails closed.

import { describeError, MeshcaError } from '../errors/index.ts';
import { SECOND_MS, type Clock, type Timer } from '../time/index.ts';
import { encodeEvent, recordHash } from './canonical.ts';
import type { AppendResult, LedgerEvent } from './events.ts';
import { GroupCommit, type Flushed } from './group_commit.ts';
import type { Ledger, LedgerQuery, LedgerRecord, PruneResult, VerifyReport } from './ledger.ts';
import { ledgerKeyIdOf, signCheckpoint, type LedgerKey } from './ledger_key.ts';
import { indexedColumnsOf, type ChainHead, type LedgerStore, type StoredCheckpoint, type StoredRecord, type Written } from './store.ts';
import { verifyHashChain, type AnchorCheck } from './verify.ts';
import { randomUUID, type KeyObject } from 'node:crypto';
import { anchorProblem, ledgerTip, META_LEDGER_ID, META_LEDGER_KEY_ID, META_ROOT_KEY_ID, readHeadAnchor, shortId, writeHeadAnchor, wrongCa, type HeadAnchor } from './binding.ts';

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
  /** Where to anchor the newest signed head outside the database (`<keys>/ledger-head.json`). */
  readonly anchorFile?: string;
}

/** What opening a ledger for a CA checks and, for a writer, records (see binding.ts). */
export interface BindOptions {
  /** The key directory, for messages. */
  readonly keysDir: string;
  /** The CA's current root key id, recorded at creation (informational). */
  readonly rootKeyId?: string;
  /** Readers: the ledger key's public half, if the key directory has one; nothing is written. */
  readonly readOnly?: { readonly publicKey: KeyObject | undefined };
  /** Start a new, empty ledger even though this CA's ledger key anchored another one. */
  readonly newLedger?: boolean;
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
  /** Set once bound: the ledger id anchors name. */
  #ledgerId: string | undefined;
  #anchoredSeq = 0;
  /**
   * The highest record this process saw committed. The chain never gets shorter (pruning moves the
   * anchor, not the head), so a head below it means records were deleted under us: fail closed.
   */
  #highestSeq = 0;
  #regressed: string | undefined;

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
    let checkpoint: StoredCheckpoint | undefined;
    let written: Written;
    try {
      written = await this.#store.write((head: ChainHead) => {
        if (head.seq < this.#highestSeq) {
          this.#regressed ??=
            `ledger ${this.#store.where} went back from record ${this.#highestSeq} to ${head.seq} while meshca had it open: records were deleted under it; ` +
            'issuance is refused until meshca is restarted on a ledger that holds them (start-up checks it against the head anchor)';
          throw new MeshcaError('LEDGER_UNAVAILABLE', this.#regressed);
        }
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
        checkpoint = key && due ? signCheckpoint(key, seq, prev, now) : undefined;
        next = {
          seq,
          hash: prev,
          lastCheckpointSeq: checkpoint ? seq : head.lastCheckpointSeq,
          oldestUncoveredTimeMs: checkpoint || uncovered === 0 ? undefined : (head.oldestUncoveredTimeMs ?? now),
        };
        return { records, ...(checkpoint ? { checkpoint } : {}) };
      }, this.#head);
      this.#head = next;
      if (next) this.#highestSeq = Math.max(this.#highestSeq, next.seq);
    } catch (err) {
      this.#head = undefined;
      throw ledgerUnavailable(this.#store.where, 'record', err);
    }
    // A checkpoint job has no result of its own; give it a placeholder so indexes line up.
    let i = 0;
    const where = this.#store.where;
    return {
      results: jobs.map((j) => (j.kind === 'event' ? results[i++]! : { seq: 0, hash: '' })),
      durable: written.durable.then(
        () => this.#anchor(checkpoint),
        (err: unknown) => {
          this.#head = undefined;
          throw ledgerUnavailable(where, 'make the record durable', err);
        },
      ),
    };
  }

  /** Rewrites the anchor file after a durable checkpoint; if it cannot, the batch fails (closed). */
  #anchor(cp: StoredCheckpoint | undefined): void {
    const file = this.#opts.anchorFile;
    if (!cp || !file || this.#ledgerId === undefined || cp.seq <= this.#anchoredSeq) return;
    try {
      writeHeadAnchor(file, { ...cp, ledgerId: this.#ledgerId });
      this.#anchoredSeq = cp.seq;
    } catch (err) {
      throw new MeshcaError('LEDGER_UNAVAILABLE', `the ledger's head anchor ${file} could not be written: ${describeError(err)}`, { cause: err });
    }
  }

  /** Why the ledger cannot be written now (e.g. its file was deleted under it), or undefined. */
  health(): string | undefined {
    return this.#closed ? `ledger ${this.#store.where} is closed` : (this.#regressed ?? this.#store.health?.());
  }

  /**
   * Checks that this ledger belongs to the CA whose ledger key we hold and still holds the head
   * anchored in its key directory; a writer binds a new (or never bound) ledger to the CA, in
   * its meta and its first record, and checkpoints at once so the anchor exists from record 1.
   */
  async bind(opts: BindOptions): Promise<void> {
    const where = this.#store.where;
    const publicKey = opts.readOnly ? opts.readOnly.publicKey : this.#opts.ledgerKey?.publicKey;
    if (!publicKey) return;
    const keyId = ledgerKeyIdOf(publicKey);
    const meta = await this.#store.meta();
    if (meta[META_LEDGER_KEY_ID] !== undefined && meta[META_LEDGER_KEY_ID] !== keyId) throw wrongCa(where, meta, opts.keysDir, keyId, opts.rootKeyId);
    if (opts.readOnly) return;
    const anchorFile = this.#opts.anchorFile;
    const anchor = anchorFile ? readHeadAnchor(anchorFile, publicKey) : undefined;
    const tip = await ledgerTip(this.#store);
    this.#highestSeq = Math.max(this.#highestSeq, tip.head.seq);
    let ledgerId = meta[META_LEDGER_ID];
    if (ledgerId === undefined) {
      const empty = tip.head.seq === 0;
      if (!empty) {
        // Made before ledgers were bound: adopt it if its checkpoints are this CA's.
        const last = (await this.#store.checkpoints()).at(-1);
        if (last && last.keyId !== keyId) throw wrongCa(where, { [META_LEDGER_KEY_ID]: last.keyId }, opts.keysDir, keyId, opts.rootKeyId);
      }
      if (anchor && !opts.newLedger) throw this.#notAnchored(anchor, anchorFile!, empty ? `ledger ${where} is empty` : `ledger ${where} is not the ledger it anchors`);
      await this.#store.initMeta({ [META_LEDGER_ID]: randomUUID(), [META_LEDGER_KEY_ID]: keyId, ...(opts.rootKeyId ? { [META_ROOT_KEY_ID]: opts.rootKeyId } : {}) });
      const now = await this.#store.meta();
      if (now[META_LEDGER_KEY_ID] !== keyId) throw wrongCa(where, now, opts.keysDir, keyId, opts.rootKeyId);
      ledgerId = now[META_LEDGER_ID]!;
      // A replica binding the same ledger at the same moment may have written the record already.
      if ((await ledgerTip(this.#store)).head.seq === tip.head.seq) {
        this.#ledgerId = ledgerId;
        await this.append({
          type: 'ca',
          timeMs: this.#opts.clock.now(),
          event: 'ledger-bind',
          actor: 'meshca',
          detail: {
            ledgerId,
            ledgerKeyId: keyId,
            ...(opts.rootKeyId ? { rootKeyId: opts.rootKeyId } : {}),
            created: empty,
            newLedger: opts.newLedger === true,
            ...(anchor ? { replacesLedgerId: anchor.ledgerId, replacesSeq: anchor.seq, replacesHeadHash: anchor.headHash } : {}),
          },
        });
        await this.#commit.submit({ kind: 'checkpoint', force: true });
        return;
      }
    } else if (anchor && anchor.ledgerId !== ledgerId && !opts.newLedger) {
      throw this.#notAnchored(anchor, anchorFile!, `ledger ${where} is another ledger (${shortId(ledgerId)})`);
    } else if (anchor && anchor.ledgerId === ledgerId) {
      const problem = await anchorProblem(this.#store, anchor, anchorFile!, tip);
      if (problem) {
        throw new MeshcaError('LEDGER_UNAVAILABLE', `ledger ${where}: ${problem}; restore the ledger from a copy that holds record ${anchor.seq} (or move it aside and start a new one with --new-ledger)`);
      }
      this.#anchoredSeq = anchor.seq;
    }
    this.#ledgerId = ledgerId;
  }

  #notAnchored(anchor: HeadAnchor, anchorFile: string, what: string): MeshcaError {
    return new MeshcaError(
      'LEDGER_UNAVAILABLE',
      `${what}, but this CA's ledger key has signed ${anchor.seq} records of ledger ${shortId(anchor.ledgerId)} (${anchorFile}, ` +
        `${new Date(anchor.timeMs).toISOString()}): the ledger was deleted or replaced. Restore it at that --db, or start a new ledger on purpose with --new-ledger (recorded in its first record)`,
    );
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

  /** `anchor` defaults to this CA's own anchor file (a CA answering Verify over its audit API). */
  async verify(anchor?: AnchorCheck): Promise<VerifyReport> {
    const keys = [...(this.#opts.verifyKeys ?? []), ...(this.#opts.ledgerKey ? [this.#opts.ledgerKey.publicKey] : [])];
    const file = this.#opts.anchorFile;
    if (!anchor && file && this.#opts.ledgerKey) {
      const own = readHeadAnchor(file, this.#opts.ledgerKey.publicKey);
      if (own) anchor = { anchor: own, file };
    }
    try {
      return await verifyHashChain(this.#store, keys, anchor);
    } catch (err) {
      throw ledgerUnavailable(this.#store.where, 'be read for verification', err);
    }
  }

  async newestCheckpointTimeMs(): Promise<number | undefined> {
    try {
      return (await this.#store.newestCheckpoint())?.timeMs;
    } catch (err) {
      throw ledgerUnavailable(this.#store.where, 'read the newest checkpoint', err);
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

  /** Closes without the closing checkpoint: for a ledger that failed its checks at open. */
  async abandon(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    await this.#commit.drain();
    await this.#store.close();
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
