// The Kubernetes service-account token claim shape (bound projected tokens, KEP-1205): turns
// verified claims into a Caller. Used by every authenticator that verifies such JWTs itself.

import { kubernetesSpiffeId } from '../spiffe/index.ts';
import type { JWTPayload } from 'jose';
import type { Caller, TokenFacts } from './types.ts';
import { describeError } from '../errors/index.ts';
import { JWT_CLOCK_TOLERANCE_SECONDS } from './token.ts';

const SUB_PREFIX = 'system:serviceaccount:';

type Claims = JWTPayload & {
  'kubernetes.io'?: {
    namespace?: unknown;
    serviceaccount?: { name?: unknown; uid?: unknown };
    pod?: { name?: unknown; uid?: unknown };
    node?: { name?: unknown; uid?: unknown };
  };
};

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** Returns the caller, or the reason the claims are not a well-formed service-account token. */
export function callerFromKubernetesClaims(
  payload: JWTPayload,
  opts: { trustDomain: string; authenticator: string; token: TokenFacts; nowMs: number },
): { ok: true; caller: Caller } | { ok: false; reason: string } {
  const claims = payload as Claims;
  // RFC 7519 §4.1.6: iat is when the token was issued. jose checks it only with maxTokenAge; a token
  // "issued" in the future beyond the skew was minted by a wrong clock or to outlive a revocation.
  if (typeof claims.iat === 'number' && claims.iat - JWT_CLOCK_TOLERANCE_SECONDS > opts.nowMs / 1000) {
    return { ok: false, reason: `token iat is ${Math.round(claims.iat - opts.nowMs / 1000)} s in the future (beyond the ${JWT_CLOCK_TOLERANCE_SECONDS} s clock skew allowed)` };
  }
  const sub = str(claims.sub);
  if (!sub || !sub.startsWith(SUB_PREFIX)) return { ok: false, reason: `token subject is not a service account (expected ${SUB_PREFIX}<ns>:<sa>)` };
  const [subNs, subSa, ...rest] = sub.slice(SUB_PREFIX.length).split(':');
  if (!subNs || !subSa || rest.length > 0) return { ok: false, reason: 'token subject is not of the form system:serviceaccount:<ns>:<sa>' };
  const k8s = claims['kubernetes.io'];
  if (!k8s || typeof k8s !== 'object') return { ok: false, reason: 'token has no kubernetes.io claims (not a bound service-account token)' };
  const ns = str(k8s.namespace);
  const sa = str(k8s.serviceaccount?.name);
  if (ns !== subNs || sa !== subSa) {
    return { ok: false, reason: `token subject ${sub} disagrees with its kubernetes.io claims (namespace ${ns ?? '-'}, service account ${sa ?? '-'})` };
  }
  let spiffeId;
  try {
    spiffeId = kubernetesSpiffeId(opts.trustDomain, ns, sa);
  } catch (err) {
    return { ok: false, reason: `namespace or service account does not make a valid SPIFFE ID: ${describeError(err)}` };
  }
  const podName = str(k8s.pod?.name);
  const podUid = str(k8s.pod?.uid);
  const nodeName = str(k8s.node?.name);
  return {
    ok: true,
    caller: {
      spiffeId,
      authenticator: opts.authenticator,
      namespace: ns,
      serviceAccount: sa,
      ...(podName ? { podName } : {}),
      ...(podUid ? { podUid } : {}),
      ...(nodeName ? { nodeName } : {}),
      token: opts.token,
      ...(opts.token.expMs !== undefined ? { expiresAtMs: opts.token.expMs } : {}),
    },
  };
}
