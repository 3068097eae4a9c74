// Authentication contracts: who a caller is, and the chain of authenticators that decides it.
// "Not authenticated" can never pass as success: the result is a tagged union.

import type { X509Certificate } from 'node:crypto';
import type { SpiffeId } from '../spiffe/index.ts';

/** Facts about a bearer token that the ledger keeps (never the token itself). */
export interface TokenFacts {
  readonly sha256: string;
  readonly jti?: string;
  readonly iatMs?: number;
  readonly expMs?: number;
}

export interface Caller {
  readonly spiffeId: SpiffeId;
  /** Which authenticator vouched: jwt, tokenreview, jwks, mtls. */
  readonly authenticator: string;
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly podName?: string;
  readonly podUid?: string;
  readonly nodeName?: string;
  /** The Kubernetes cluster whose API server vouched (Istio's ClusterID). */
  readonly clusterId?: string;
  /**
   * Set when a trusted node agent (ztunnel) asked for this identity on the workload's behalf: the
   * agent's own identity. The other fields then describe the workload, `nodeName` the shared node.
   */
  readonly impersonatedBy?: { readonly spiffeId: SpiffeId; readonly podName?: string; readonly authenticator: string };
  readonly token?: TokenFacts;
  /** When this identity stops being good (token exp, client certificate notAfter). */
  readonly expiresAtMs?: number;
  /**
   * Set for a renewal over mTLS: the serial (hex) of the client certificate presented. The issuer
   * looks its grant up in the ledger to bound the renewal (--max-renewal-age).
   */
  readonly renewalOf?: string;
}

export interface AuthRequest {
  /** The raw bearer token from `authorization: Bearer …`, if any. */
  readonly bearerToken?: string;
  /** Verified TLS client certificate chain (leaf first), if the peer sent one. */
  readonly peerCertificates?: readonly X509Certificate[];
  readonly peerAddress?: string;
  /** Istio's `ClusterID` request header: which cluster's API server should review the token. */
  readonly clusterId?: string;
  /** Absolute deadline (ms since epoch) the authenticator must answer by. */
  readonly deadlineMs?: number;
}

/**
 * - `skip`: this authenticator cannot judge the request (no token, someone else's issuer…);
 * - `refused`: it can, and the answer is no (UNAUTHENTICATED; identity policy is applied after, by the caller);
 * - `unavailable`: it could not find out (API server down, rate limit spent): UNAVAILABLE.
 */
export type AuthOutcome =
  | { readonly ok: true; readonly caller: Caller }
  | {
      readonly ok: false;
      readonly kind: 'skip' | 'refused' | 'unavailable';
      /** Safe to show the client: no token, no secrets. */
      readonly reason: string;
      /** Seconds the client should wait before retrying (for `unavailable`). */
      readonly retryAfterSeconds?: number;
    };

export interface Authenticator {
  readonly name: string;
  authenticate(req: AuthRequest): Promise<AuthOutcome>;
}
