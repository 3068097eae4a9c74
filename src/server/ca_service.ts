// istio.v1.auth.IstioCertificateService/CreateCertificate. Reads top to bottom: parse →
// authenticate → derive the SPIFFE ID from the authenticated identity only → check policy →
// issue (TTL and CSR checks, sign, ledger) → answer. The CSR's own subject and SANs are ignored:
// identity comes from the caller's credentials, as Istio's CreateCertificate also insists.

import * as grpc from '@grpc/grpc-js';
import { authenticateWithChain, tokenLogId, tokenSha256, type Authenticator, type AuthRequest, type Caller, type IdentityPolicy, type NodeAuthorizer } from '../authn/index.ts';
import type { SvidIssuer } from '../ca/index.ts';
import { MeshcaError, toGrpcStatus } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import type { Clock } from '../time/index.ts';
import { peerAddressOf } from '../transport/index.ts';
import { authRequestOf, deadlineOf } from './call_identity.ts';
import { impersonate, impersonatedIdentityOf } from './impersonation.ts';
import type { CaMetrics } from './metrics.ts';

/** Longest an issuance may wait on authentication when the client sets no deadline. */
export const DEFAULT_REQUEST_DEADLINE_MS = 10_000;

export interface CaServiceDeps {
  readonly issuer: SvidIssuer;
  readonly authenticators: () => readonly Authenticator[];
  readonly policy: IdentityPolicy;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: CaMetrics;
  /** Roots of federated trust domains appended to the bundle part of cert_chain (--federated-in-rootca). */
  readonly federatedRoots?: () => readonly string[];
  /** Istio ambient: who may ask for a workload's identity (--trusted-node-accounts); absent: nobody. */
  readonly nodeAuthorizer?: NodeAuthorizer;
}

interface CreateCertificateRequest {
  csr?: unknown;
  validity_duration?: unknown;
  metadata?: unknown;
}

const STATUS_NAMES = Object.fromEntries(Object.entries(grpc.status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k]));

// Istio's order (security/pkg/server/ca/server.go): authenticate first, then look at the request.
// A caller without credentials learns nothing about what is wrong with its CSR.
function requestedTtlOf(req: CreateCertificateRequest): number {
  return Number(req.validity_duration ?? 0);
}

function csrOf(req: CreateCertificateRequest): string {
  if (typeof req.csr !== 'string' || req.csr.trim() === '') throw new MeshcaError('BAD_CSR', 'csr (field 1) is empty; send a PEM CERTIFICATE REQUEST');
  return req.csr;
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

/** What the one admission step needs: the authenticator chain, the identity policy, time and the log. */
export type AdmissionDeps = Pick<CaServiceDeps, 'authenticators' | 'policy' | 'clock' | 'log'>;

/** Told of every refused call, with the caller when authentication succeeded and the policy refused it. */
export type OnRefused = (err: unknown, refused: { readonly authReq: AuthRequest; readonly caller?: Caller }) => Promise<void>;

/**
 * The one admission step of every authenticated API (CreateCertificate, CA-direct SDS, admin,
 * audit): who the caller is, then whether the identity policy admits that identity. There is no
 * other way to a Caller in src/server, so no API can skip the policy. Throws the MeshcaError the
 * client should see.
 */
export async function authenticateCall(call: AnyCall, deps: AdmissionDeps, onRefused?: OnRefused): Promise<Caller> {
  const authReq = authRequestOf(call, deadlineOf(call, deps.clock.now(), DEFAULT_REQUEST_DEADLINE_MS));
  let caller: Caller | undefined;
  try {
    caller = await authenticateRequest(authReq, deps);
    authorizeCaller(caller, deps.policy, deps.log);
    return caller;
  } catch (err) {
    await onRefused?.(err, { authReq, ...(caller ? { caller } : {}) });
    throw err;
  }
}

/** The identity policy (--deny-ids, --deny-namespaces, --allow-namespaces) on an authenticated caller. */
export function authorizeCaller(caller: Caller, policy: IdentityPolicy, log?: Pick<Logger, 'warn'>): void {
  const verdict = policy.check(caller);
  if (verdict.ok) return;
  log?.warn({ spiffeId: caller.spiffeId.uri, rule: verdict.rule }, 'refused by the identity policy');
  throw new MeshcaError('PERMISSION_DENIED', verdict.reason);
}

async function authenticateRequest(authReq: AuthRequest, deps: Pick<CaServiceDeps, 'authenticators' | 'log'>): Promise<Caller> {
  const result = await authenticateWithChain(deps.authenticators(), authReq);
  if (!result.caller) {
    deps.log.info(
      { peer: authReq.peerAddress, ...(authReq.bearerToken ? { tokenId: tokenLogId(authReq.bearerToken) } : {}), authn: result.trail },
      'authentication failed',
    );
    throw result.error ?? new MeshcaError('UNAUTHENTICATED', 'not authenticated');
  }
  return result.caller;
}

export function createCaServiceHandlers(deps: CaServiceDeps): grpc.UntypedServiceImplementation {
  return {
    CreateCertificate: (
      call: grpc.ServerUnaryCall<CreateCertificateRequest, { cert_chain: string[] }>,
      callback: grpc.sendUnaryData<{ cert_chain: string[] }>,
    ) => {
      void createCertificate(call, deps).then(
        (chain) => callback(null, { cert_chain: chain }),
        (err: unknown) => {
          const status = toGrpcStatus(err, deps.log);
          callback({ code: status.code, details: status.details });
        },
      );
    },
  };
}

async function createCertificate(call: grpc.ServerUnaryCall<CreateCertificateRequest, unknown>, deps: CaServiceDeps): Promise<string[]> {
  const started = performance.now();
  const peer = peerAddressOf(call);
  let caller: Caller | undefined;
  let ttlSeconds: number | undefined;
  let outcome = 'OK';
  let reason: string | undefined;
  let serial: string | undefined;
  try {
    ttlSeconds = requestedTtlOf(call.request);
    const recordRefusal = (err: unknown, who: Caller | undefined, token: string | undefined, detail?: Record<string, string>) =>
      deps.issuer.recordRefusal({ channel: 'CreateCertificate', peer, requestedTtlSeconds: ttlSeconds, ...(who ? { caller: who } : token ? { tokenSha256: tokenSha256(token) } : {}), ...(detail ? { detail } : {}) }, err);
    caller = await authenticateCall(call, deps, async (err, refused) => {
      caller = refused.caller;
      await recordRefusal(err, refused.caller, refused.authReq.bearerToken);
    });
    let csrPem: string;
    let requested: string | undefined;
    try {
      requested = impersonatedIdentityOf(call.request.metadata);
      if (requested !== undefined) {
        // The agent stays the recorded caller of a refusal; a grant records the workload, with the agent in its detail.
        const workload = impersonate(caller, requested, deps.nodeAuthorizer);
        authorizeCaller(workload, deps.policy, deps.log);
        caller = workload;
      }
      csrPem = csrOf(call.request);
    } catch (err) {
      await recordRefusal(err, caller, undefined, requested !== undefined ? { impersonationRequested: requested } : undefined);
      throw err;
    }
    const svid = await deps.issuer.issueWorkloadSvid({
      caller,
      csrPem,
      requestedTtlSeconds: ttlSeconds,
      channel: 'CreateCertificate',
      peer,
    });
    serial = svid.certificate.serialHex;
    // cert_chain ends with the roots to trust; federated ones follow ours, so ROOTCA trusts peers too.
    return [...svid.chainPem, ...(deps.federatedRoots?.() ?? [])];
  } catch (err) {
    // An internal error is logged here with its correlation id; the client gets only the id.
    const status = toGrpcStatus(err, deps.log);
    outcome = STATUS_NAMES[status.code] ?? 'UNKNOWN';
    // What the client was told (never a token or key): a refusal says why, not only its code.
    reason = status.details;
    throw err;
  } finally {
    const seconds = (performance.now() - started) / 1000;
    deps.metrics.issuances.inc({ outcome });
    deps.metrics.issueDuration.observe({ outcome }, seconds);
    deps.log.info(
      {
        rpc: 'CreateCertificate',
        outcome,
        spiffeId: caller?.spiffeId.uri,
        authenticator: caller?.authenticator,
        serial,
        ttlSeconds,
        peer,
        ...(reason !== undefined ? { reason } : {}),
        durationMs: Math.round(seconds * 10000) / 10,
      },
      outcome === 'OK' ? 'issued' : 'refused',
    );
  }
}
