// What the ledger records. These shapes are the contract between the CA (which appends) and the
// ledger backends and auditors (which store, chain and query). Never a token, never a key.

export type Decision = 'granted' | 'denied';

/** Where an issuance request came in. */
export type IssuanceChannel = 'CreateCertificate' | 'SDS' | 'sign-cli' | 'serving-cert';

export interface IssuanceEvent {
  readonly type: 'issuance';
  readonly timeMs: number;
  readonly decision: Decision;
  /** "issued", or the message the client was given. */
  readonly reason: string;
  /** meshca error code for denials (e.g. UNAUTHENTICATED, BAD_TTL). */
  readonly errorCode?: string;
  readonly channel: IssuanceChannel;
  readonly spiffeId?: string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly podName?: string;
  readonly podUid?: string;
  readonly nodeName?: string;
  /** Which authenticator vouched for the caller (jwt, tokenreview, mtls, operator…). */
  readonly authenticator?: string;
  /** SHA-256 hex of the bearer token: correlates without storing the token. */
  readonly tokenSha256?: string;
  readonly tokenJti?: string;
  readonly tokenIatMs?: number;
  readonly tokenExpMs?: number;
  readonly peer?: string;
  /** SHA-256 hex of the CSR's SubjectPublicKeyInfo DER. */
  readonly csrKeySha256?: string;
  readonly serial?: string;
  readonly notBeforeMs?: number;
  readonly notAfterMs?: number;
  readonly issuerKeyId?: string;
  readonly rootKeyId?: string;
  readonly requestedTtlSeconds?: number;
  readonly grantedTtlSeconds?: number;
  /**
   * Facts of the request that only some deployments have, by name: `clusterId` (Istio's ClusterID),
   * and for a node agent asking on a workload's behalf `impersonatedBy` (its SPIFFE ID),
   * `impersonatedByPod` and `impersonatedByAuthenticator`; on a refused one, `impersonationRequested`
   * (the identity the node agent asked for). Never a token or a key.
   */
  readonly detail?: Readonly<Record<string, string>>;
}

export type CaEventName =
  | 'ca-init'
  | 'root-prepare'
  | 'root-activate'
  | 'root-retire'
  | 'intermediate-prepare'
  | 'intermediate-activate'
  | 'server-start'
  | 'server-stop'
  /** Retention removed records up to a signed checkpoint, which became the chain's new anchor. */
  | 'ledger-prune'
  /** The runtime deny list changed (`meshca deny add|remove`); the actor is the admin. */
  | 'deny-add'
  | 'deny-remove'
  /** The ledger was bound to its CA (its first record; `newLedger` when --new-ledger replaced an anchored one). */
  | 'ledger-bind';

export interface CaEvent {
  readonly type: 'ca';
  readonly timeMs: number;
  readonly event: CaEventName;
  /** Who did it: a SPIFFE ID, "cli:<user>" or "scheduler". */
  readonly actor: string;
  readonly detail: Readonly<Record<string, string | number | boolean>>;
}

export interface AuditQueryEvent {
  readonly type: 'audit-query';
  readonly timeMs: number;
  /** The caller's SPIFFE ID, or "unauthenticated". */
  readonly caller: string;
  readonly decision: Decision;
  readonly filter: Readonly<Record<string, string | number | boolean>>;
  /** Which auditor call: Query or Verify. */
  readonly method?: string;
  /** Why it was denied (safe to show: no token, no secrets). */
  readonly reason?: string;
  readonly authenticator?: string;
  readonly peer?: string;
}

/**
 * Refusals before authentication (no or invalid credentials), counted per interval by channel,
 * peer host and error code instead of one record each (see refusals.ts). Peer, code and channel
 * are '*' for the overflow bucket beyond the per-interval key limit.
 */
export interface RefusalsEvent {
  readonly type: 'refusals';
  /** The end of the interval counted. */
  readonly timeMs: number;
  readonly sinceMs: number;
  readonly decision: 'denied';
  /** CreateCertificate, or audit:<method>. */
  readonly channel: string;
  readonly peer: string;
  readonly errorCode: string;
  /** The first refusal's message for this key: an example. */
  readonly reason: string;
  readonly count: number;
}

export type LedgerEvent = IssuanceEvent | CaEvent | AuditQueryEvent | RefusalsEvent;

export interface AppendResult {
  /** 1-based position in the chain. */
  readonly seq: number;
  /** Hex SHA-256 chain hash of this record. */
  readonly hash: string;
}

/**
 * The write side every backend offers. `append` resolves only once the record is durable; if it
 * cannot be made durable it rejects with a LEDGER_UNAVAILABLE MeshcaError and nothing is issued.
 */
export interface LedgerWriter {
  append(event: LedgerEvent): Promise<AppendResult>;
}
