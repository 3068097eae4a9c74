// What `meshca serve --workers N`'s processes say to each other over node:cluster's IPC channel:
// ledger requests to the primary (the one writer), start-up and bundle reports, and the primary's
// questions for /readyz and /metrics. Plain JSON; anything else on the channel is ignored.

import type { LedgerReply, LedgerRequest } from '../ledger/index.ts';
import type { FailingCheck } from '../transport/index.ts';

/** The environment variable the primary gives each worker its rank in (read by the serve command). */
export const WORKER_RANK_ENV = 'MESHCA_WORKER_RANK';

/** A worker's registry as prom-client's getMetricsAsJSON() gives it (aggregated by the primary). */
export type MetricsJson = readonly object[];

export interface BundleReport {
  readonly rootsPem: readonly string[];
  readonly sequence: number;
}

export type ToPrimary =
  | { readonly t: 'ledger'; readonly id: number; readonly request: LedgerRequest }
  | { readonly t: 'ready'; readonly rank: number; readonly pid: number; readonly grpcAddress: string; readonly issuerKeyId: string; readonly rootKeyId: string; readonly bundle: BundleReport }
  /** The worker could not start: its error, as the single process would have thrown it. */
  | { readonly t: 'failed'; readonly rank: number; readonly code: string; readonly message: string }
  | { readonly t: 'bundle'; readonly bundle: BundleReport }
  | { readonly t: 'readiness-reply'; readonly id: number; readonly failing: readonly FailingCheck[] }
  | { readonly t: 'metrics-reply'; readonly id: number; readonly metrics: MetricsJson };

export type ToWorker =
  | { readonly t: 'ledger-reply'; readonly id: number; readonly reply: LedgerReply }
  /** `ledgerHealth`: why the primary's ledger cannot record now, if it cannot. */
  | { readonly t: 'readiness'; readonly id: number; readonly ledgerHealth?: string }
  | { readonly t: 'metrics'; readonly id: number }
  /** Stop accepting, let calls in flight finish for up to graceMs, then exit. */
  | { readonly t: 'shutdown'; readonly graceMs: number };

const TO_PRIMARY = new Set<string>(['ledger', 'ready', 'failed', 'bundle', 'readiness-reply', 'metrics-reply']);
const TO_WORKER = new Set<string>(['ledger-reply', 'readiness', 'metrics', 'shutdown']);

function tagOf(msg: unknown): string | undefined {
  return typeof msg === 'object' && msg !== null && typeof (msg as { t?: unknown }).t === 'string' ? (msg as { t: string }).t : undefined;
}

export function isToPrimary(msg: unknown): msg is ToPrimary {
  return TO_PRIMARY.has(tagOf(msg) ?? '');
}

export function isToWorker(msg: unknown): msg is ToWorker {
  return TO_WORKER.has(tagOf(msg) ?? '');
}
