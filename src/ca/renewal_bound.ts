// How long renewals over mTLS may keep an identity alive (--max-renewal-age, docs/security.md):
// every issuance record carries `detail.grantedAt`, the time of the token (or operator) grant its
// chain of renewals descends from. A renewal looks the presented certificate up by serial through
// the ledger's public query API and carries that time forward; past the bound it is refused.

import { MeshcaError } from '../errors/index.ts';
import type { LedgerEvent } from '../ledger/index.ts';

/** Where the issuer finds the grant a presented certificate descends from: a Ledger's query, or events kept in memory. */
export interface GrantLedger {
  query(q: { readonly serial: string; readonly type: 'issuance'; readonly limit: number }): Promise<ReadonlyArray<{ readonly event: LedgerEvent }>>;
}

/** `--db memory:` (benchmarks): the same lookup over the events kept in memory, newest first. */
export function memoryGrantLedger(events: readonly LedgerEvent[]): GrantLedger {
  return {
    async query(q) {
      const serial = q.serial.toLowerCase();
      const found: { event: LedgerEvent }[] = [];
      for (let i = events.length - 1; i >= 0 && found.length < q.limit; i--) {
        const event = events[i]!;
        if (event.type === 'issuance' && event.serial?.toLowerCase() === serial) found.push({ event });
      }
      return found;
    },
  };
}

/** The detail key that records the chain's grant time (ISO 8601) on every issuance. */
export const GRANTED_AT_DETAIL = 'grantedAt';

function noGrant(serialHex: string, why: string): MeshcaError {
  return new MeshcaError('UNAUTHENTICATED', `renewal over mTLS refused: ${why} for the client certificate (serial ${serialHex}); present a fresh token`);
}

/**
 * When the identity in the certificate with `serialHex` was granted on a token or by an operator:
 * its record's `detail.grantedAt`, or the record's own time for a token grant made before the
 * detail existed. Throws UNAUTHENTICATED when the ledger holds no usable grant (pruned, or a
 * renewal recorded without its grant time), and LEDGER_UNAVAILABLE when the ledger cannot answer.
 */
export async function grantTimeOf(ledger: GrantLedger | undefined, serialHex: string): Promise<number> {
  if (!ledger) throw noGrant(serialHex, 'this CA keeps no ledger to look the grant up in');
  const records = await ledger.query({ serial: serialHex, type: 'issuance', limit: 2 });
  const granted = records.map((r) => r.event).find((e) => e.type === 'issuance' && e.decision === 'granted');
  if (!granted || granted.type !== 'issuance') throw noGrant(serialHex, 'the ledger has no issuance record');
  const recorded = granted.detail?.[GRANTED_AT_DETAIL];
  if (recorded !== undefined) {
    const ms = Date.parse(recorded);
    if (!Number.isFinite(ms)) throw noGrant(serialHex, 'the ledger record has no readable grant time');
    return ms;
  }
  if (granted.authenticator === 'mtls') throw noGrant(serialHex, 'the ledger record of this renewal has no grant time');
  return granted.timeMs;
}
