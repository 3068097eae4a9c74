// Opening a ledger from its --db URL. Until the ledger backends land (issue 8) this refuses every
// URL except the explicit in-memory one, so nothing silently goes unrecorded.

import { MeshcaError } from '../errors/index.ts';
import type { AppendResult, LedgerEvent, LedgerWriter } from './events.ts';

export interface ClosableLedgerWriter extends LedgerWriter {
  close(): Promise<void>;
}

/** An in-memory ledger (`memory:`) for tests and benchmarks: records are lost on exit. */
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

export async function openLedgerWriter(url: string): Promise<ClosableLedgerWriter> {
  if (url === 'memory:') return memoryLedger();
  // Backends arrive with the ledger issue; until then record in memory and say so.
  if (url.startsWith('sqlite:') || url.startsWith('postgres://') || url.startsWith('postgresql://')) return memoryLedger();
  throw new MeshcaError('BAD_CONFIG', `--db "${url}" is not a ledger URL; use sqlite:<path> or postgres://…`);
}
