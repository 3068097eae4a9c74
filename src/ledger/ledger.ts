// The Ledger interface every backend offers, and the shapes of queries, records and verification.
// No SQL here: backends (sqlite_store.ts, postgres_store.ts) implement LedgerStore underneath.

import type { AppendResult, LedgerEvent, LedgerWriter } from './events.ts';
import type { AnchorCheck } from './verify.ts';

/** Filters for a ledger query; all given filters must match. */
export interface LedgerQuery {
  readonly spiffeId?: string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly podName?: string;
  /** Certificate serial, hex (any case, colons allowed). */
  readonly serial?: string;
  readonly type?: LedgerEvent['type'];
  readonly deniedOnly?: boolean;
  /** Inclusive lower bound on the event time. */
  readonly sinceMs?: number;
  /** Exclusive upper bound on the event time. */
  readonly untilMs?: number;
  /** Cursor: only records with seq greater than this (for paging in ascending order). */
  readonly afterSeq?: number;
  /** Cursor: only records with seq less than this (for paging in descending order). */
  readonly beforeSeq?: number;
  /** Newest first (desc, the default) or oldest first (asc, for export). */
  readonly order?: 'asc' | 'desc';
  readonly limit: number;
}

export interface LedgerRecord {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly event: LedgerEvent;
  /** The canonical JSON the hash covers, exactly as stored. */
  readonly eventJson: string;
}

export type VerifyProblemKind = 'altered' | 'removed' | 'inserted' | 'checkpoint' | 'anchor';

export interface VerifyProblem {
  readonly kind: VerifyProblemKind;
  /** The record (or checkpoint's record count) the problem is about. */
  readonly seq: number;
  readonly message: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  /** Records checked. */
  readonly records: number;
  /** The chain starts after this record (0, or the checkpoint retention pruned up to). */
  readonly anchorSeq: number;
  readonly headSeq: number;
  readonly headHash: string;
  readonly checkpoints: number;
  /** Checkpoints whose signature was checked against a ledger key and found good. */
  readonly checkpointsSigned: number;
  /** False when no ledger public key was available, so signatures went unchecked. */
  readonly signaturesChecked: boolean;
  /** Records appended after the last checkpoint: a signed checkpoint does not cover them yet. */
  readonly uncoveredRecords: number;
  /** The head anchored outside the database (`<keys>/ledger-head.json`), when one was compared. */
  readonly anchoredHead?: { readonly file: string; readonly seq: number; readonly timeMs: number; readonly held: boolean };
  /** In order of seq: the first names the first record altered, removed or inserted. */
  readonly problems: readonly VerifyProblem[];
}

export interface PruneResult {
  /** Records removed (0 when no checkpoint is old enough). */
  readonly removed: number;
  /** The checkpoint the chain now starts from. */
  readonly anchorSeq: number;
}

/**
 * A tamper-evident issuance ledger. `append` resolves once the record is durable and rejects with
 * LEDGER_UNAVAILABLE otherwise; concurrent appends share one transaction (group commit).
 */
export interface Ledger extends LedgerWriter {
  append(event: LedgerEvent): Promise<AppendResult>;
  query(q: LedgerQuery): Promise<LedgerRecord[]>;
  /** `anchor`: the head anchored outside the database, which the ledger must still hold. */
  verify(anchor?: AnchorCheck): Promise<VerifyReport>;
  /** Why the ledger cannot be written now (e.g. its SQLite file was deleted under it), or undefined; cheap. */
  health(): string | undefined;
  /** When the newest signed checkpoint was made (any replica's), or undefined when none is yet. */
  newestCheckpointTimeMs(): Promise<number | undefined>;
  /** Removes records older than `beforeMs` up to the newest signed checkpoint among them. */
  prune(beforeMs: number): Promise<PruneResult>;
  close(): Promise<void>;
}
