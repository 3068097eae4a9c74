// Public face of src/ledger: the event contract and opening a ledger from a --db URL.
export type { LedgerEvent, IssuanceEvent, CaEvent, AuditQueryEvent, AppendResult, LedgerWriter, Decision, IssuanceChannel, CaEventName } from './events.ts';
export { openLedgerWriter, type ClosableLedgerWriter } from './open.ts';
