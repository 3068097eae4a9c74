// TokenReview authenticator: asks the Kubernetes API who a service-account token belongs to, with
// a cache keyed by the token's hash, one API call per token however many callers wait on it, and
// fail-closed answers when the API cannot be asked. Never logs or caches the token itself.

import type { TokenReviewStatus as V1TokenReviewStatus } from '../../kube/index.ts';
import type { Logger } from '../../observability/index.ts';
import { kubernetesSpiffeId } from '../../spiffe/index.ts';
import { SECOND_MS, type Clock, type Timer } from '../../time/index.ts';
import { audienceList } from '../jwt.ts';
import { MAX_TOKEN_BYTES, tokenFacts, tokenLogId, tokenSha256 } from '../token.ts';
import type { Authenticator, AuthOutcome, AuthRequest, Caller } from '../types.ts';
import type { KubeAuthMetrics } from './metrics.ts';
import type { TokenReviewClient } from './review_client.ts';
import { ReviewCache } from './token_cache.ts';
import { legacyRefusal, tokenShapeOf, type TokenShape } from './token_shape.ts';
import { describeError } from '../../errors/index.ts';

/** Refusals are remembered briefly so a crash-looping pod with a bad token costs one call per 10 s. */
export const NEGATIVE_CACHE_TTL_MS = 10 * SECOND_MS;
/** Used when a request carries no deadline of its own. */
export const DEFAULT_REVIEW_DEADLINE_MS = 10 * SECOND_MS;
/** A token whose exp passed longer ago than this is refused without asking the API. */
const EXPIRY_SKEW_MS = 30 * SECOND_MS;
const SERVICE_ACCOUNTS_GROUP = 'system:serviceaccounts';
const USERNAME_RE = /^system:serviceaccount:([^:]+):([^:]+)$/;
const EXTRA_POD_NAME = 'authentication.kubernetes.io/pod-name';
const EXTRA_POD_UID = 'authentication.kubernetes.io/pod-uid';
const EXTRA_NODE_NAME = 'authentication.kubernetes.io/node-name';
/** kube-apiserver error strings carry no token, but can be long; keep the client's message short. */
const MAX_API_ERROR_CHARS = 300;

type Refusal = Extract<AuthOutcome, { ok: false }>;

export interface TokenReviewAuthenticatorOptions {
  /** Accepted audiences: the token must be confirmed for at least one. */
  readonly audiences: readonly string[];
  readonly trustDomain: string;
  readonly allowLegacyTokens: boolean;
  readonly tokenCacheTtlMs: number;
  readonly tokenCacheSize: number;
  readonly client: TokenReviewClient;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: KubeAuthMetrics;
}

function refused(reason: string): Refusal {
  return { ok: false, kind: 'refused', reason };
}

function firstExtra(status: V1TokenReviewStatus, key: string): string | undefined {
  const v = status.user?.extra?.[key]?.[0];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** Turns the API's answer into a caller, accepting only a service account for our audience. */
export function callerFromReview(
  status: V1TokenReviewStatus,
  token: string,
  opts: { audiences: readonly string[]; trustDomain: string; legacy: boolean },
): { ok: true; caller: Caller } | Refusal {
  if (!status.authenticated) {
    const apiError = (status.error ?? 'no reason given').slice(0, MAX_API_ERROR_CHARS);
    return refused(`Kubernetes TokenReview did not authenticate the token: ${apiError}`);
  }
  // Legacy tokens are reviewed for the API server's own audiences; bound ones must name ours.
  if (!opts.legacy && !(status.audiences ?? []).some((a) => opts.audiences.includes(a))) {
    return refused(`Kubernetes TokenReview did not confirm the audience ${audienceList(opts.audiences)} (token audiences: ${JSON.stringify(status.audiences ?? [])})`);
  }
  const username = status.user?.username ?? '';
  if (!(status.user?.groups ?? []).includes(SERVICE_ACCOUNTS_GROUP)) {
    return refused(`token belongs to "${username.slice(0, 200)}", which is not a service account (not in group ${SERVICE_ACCOUNTS_GROUP})`);
  }
  const m = USERNAME_RE.exec(username);
  if (!m) return refused(`token user "${username.slice(0, 200)}" is not of the form system:serviceaccount:<namespace>:<name>`);
  const [, namespace, serviceAccount] = m as unknown as [string, string, string];
  let spiffeId;
  try {
    spiffeId = kubernetesSpiffeId(opts.trustDomain, namespace, serviceAccount);
  } catch (err) {
    return refused(`service account ${namespace}/${serviceAccount} does not make a valid SPIFFE ID: ${describeError(err)}`);
  }
  const facts = tokenFacts(token);
  const podName = firstExtra(status, EXTRA_POD_NAME);
  const podUid = firstExtra(status, EXTRA_POD_UID);
  const nodeName = firstExtra(status, EXTRA_NODE_NAME);
  return {
    ok: true,
    caller: {
      spiffeId,
      authenticator: 'tokenreview',
      namespace,
      serviceAccount,
      ...(podName ? { podName } : {}),
      ...(podUid ? { podUid } : {}),
      ...(nodeName ? { nodeName } : {}),
      token: facts,
      ...(facts.expMs !== undefined ? { expiresAtMs: facts.expMs } : {}),
    },
  };
}

export function createTokenReviewAuthenticator(opts: TokenReviewAuthenticatorOptions): Authenticator {
  const { clock, log, metrics } = opts;
  const cache = new ReviewCache<AuthOutcome>(opts.tokenCacheSize, clock);
  const inflight = new Map<string, Promise<AuthOutcome>>();
  let warnedLegacy = false;

  /** Refusals we can make from the token's own (unverified) claims, saving an API call. */
  function precheck(shape: TokenShape): Refusal | undefined {
    if (shape.kind === 'not-jwt') return refused('bearer token is not a JWT; Kubernetes service-account tokens are');
    if (shape.kind === 'legacy') {
      if (!opts.allowLegacyTokens) return refused(legacyRefusal(opts.audiences[0]!));
      if (!warnedLegacy) {
        warnedLegacy = true;
        log.warn('--allow-legacy-tokens is on and a legacy secret-based service-account token was presented: such tokens never expire and are not bound to meshca');
      }
      return undefined;
    }
    if (shape.expMs !== undefined && shape.expMs + EXPIRY_SKEW_MS <= clock.now()) return refused('token has expired');
    if (!shape.aud.some((a) => opts.audiences.includes(a))) return refused(`token audience ${JSON.stringify(shape.aud)} does not include ${audienceList(opts.audiences)}`);
    return undefined;
  }

  async function reviewAndRemember(token: string, sha: string, legacy: boolean, deadlineMs: number): Promise<AuthOutcome> {
    const logId = sha.slice(0, 12);
    const result = await opts.client.review(token, legacy ? [] : opts.audiences, deadlineMs, logId);
    if (!result.ok) return { ok: false, kind: 'unavailable', reason: result.reason, retryAfterSeconds: result.retryAfterSeconds };
    const outcome = callerFromReview(result.status, token, { audiences: opts.audiences, trustDomain: opts.trustDomain, legacy });
    const now = clock.now();
    if (outcome.ok) {
      const until = Math.min(now + opts.tokenCacheTtlMs, outcome.caller.expiresAtMs ?? Number.POSITIVE_INFINITY);
      cache.set(sha, outcome, until);
      log.debug({ tokenId: logId, spiffeId: outcome.caller.spiffeId.uri }, 'TokenReview accepted the token');
    } else {
      cache.set(sha, outcome, now + NEGATIVE_CACHE_TTL_MS);
      log.info({ tokenId: logId, reason: outcome.reason }, 'TokenReview refused the token');
    }
    return outcome;
  }

  function untilDeadline(work: Promise<AuthOutcome>, deadlineMs: number): Promise<AuthOutcome> {
    const remainingMs = deadlineMs - clock.now();
    let timer: Timer | undefined;
    const expired = new Promise<AuthOutcome>((resolve) => {
      timer = clock.setTimer(remainingMs, () =>
        resolve({ ok: false, kind: 'unavailable', reason: 'Kubernetes API did not answer the TokenReview before the request deadline', retryAfterSeconds: 1 }),
      );
    });
    return Promise.race([work, expired]).finally(() => timer?.cancel());
  }

  return {
    name: 'tokenreview',
    async authenticate(req: AuthRequest): Promise<AuthOutcome> {
      const token = req.bearerToken;
      if (!token) return { ok: false, kind: 'skip', reason: 'no bearer token' };
      if (token.length > MAX_TOKEN_BYTES) return refused(`token is longer than ${MAX_TOKEN_BYTES} bytes`);
      const sha = tokenSha256(token);
      const cached = cache.get(sha);
      if (cached) {
        metrics.cacheHits.inc();
        return cached;
      }
      metrics.cacheMisses.inc();
      const shape = tokenShapeOf(token);
      const early = precheck(shape);
      if (early) {
        log.info({ tokenId: tokenLogId(token), reason: early.reason }, 'token refused before TokenReview');
        return early;
      }
      const deadlineMs = req.deadlineMs ?? clock.now() + DEFAULT_REVIEW_DEADLINE_MS;
      let work = inflight.get(sha);
      if (work) {
        metrics.coalesced.inc();
      } else {
        // The shared call runs within the first caller's deadline; later waiters stop at their own.
        work = reviewAndRemember(token, sha, shape.kind === 'legacy', deadlineMs)
          .catch((err: unknown): AuthOutcome => {
            log.error({ tokenId: sha.slice(0, 12), err: describeError(err) }, 'TokenReview failed unexpectedly');
            return { ok: false, kind: 'unavailable', reason: 'TokenReview failed unexpectedly', retryAfterSeconds: 1 };
          })
          .finally(() => inflight.delete(sha));
        inflight.set(sha, work);
      }
      return untilDeadline(work, deadlineMs);
    },
  };
}
