// Public face of src/ledger: the event contract, the Ledger interface, and opening one from a --db URL.
export type { LedgerEvent, IssuanceEvent, CaEvent, AuditQueryEvent, RefusalsEvent, AppendResult, LedgerWriter, Decision, IssuanceChannel, CaEventName } from './events.ts';
export type { Ledger, LedgerQuery, LedgerRecord, VerifyReport, VerifyProblem, VerifyProblemKind, PruneResult } from './ledger.ts';
export { openLedger, openLedgerWriter, memoryLedger, defaultLedgerUrl, ledgerUrlFor, DEFAULT_LEDGER_FILE, type ClosableLedgerWriter, type OpenLedgerOptions } from './open.ts';
export { LEDGER_HEAD_FILE, headAnchorPath, readHeadAnchor, type HeadAnchor } from './binding.ts';
export type { AnchorCheck } from './verify.ts';
export { RemoteLedger, answerLedgerRequest, type LedgerChannel, type LedgerRequest, type LedgerReply } from './remote.ts';
export { canonicalJson, recordHash, checkpointMessage, GENESIS_HASH } from './canonical.ts';
export { LEDGER_KEY_FILE, LEDGER_PUBLIC_KEY_FILE, loadOrCreateLedgerKey, readLedgerPublicKey, ledgerKeyFrom, type LedgerKey } from './ledger_key.ts';
export { DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_INTERVAL_MS } from './chained_ledger.ts';

export { startRetention, RETENTION_INTERVAL_MS } from './retention.ts';
export { aggregateRefusals, peerHost, DEFAULT_REFUSAL_INTERVAL_MS, DEFAULT_REFUSAL_MAX_KEYS, OVERFLOW_KEY, type Refusal, type RefusalCounter } from './refusals.ts';
