// The one place meshca calls TokenReview: client-side rate limit first, then the call with the
// caller's deadline as its timeout, 429/5xx/unreachable retried with backoff (Retry-After honoured)
// while the deadline allows. It never sends a token anywhere but the configured API server.

import { KubeApiError, type KubeClient, type TokenReview, type TokenReviewStatus as V1TokenReviewStatus } from '../../kube/index.ts';
import type { Logger } from '../../observability/index.ts';
import { sleep, type Clock } from '../../time/index.ts';
import type { KubeAuthMetrics } from './metrics.ts';
import type { RateLimiter } from './rate_limit.ts';

export type ReviewCallResult =
  | { readonly ok: true; readonly status: V1TokenReviewStatus }
  | { readonly ok: false; readonly reason: string; readonly retryAfterSeconds: number };

export interface TokenReviewClient {
  /** `audiences` empty asks for the API server's own audiences (legacy tokens). */
  review(token: string, audiences: readonly string[], deadlineMs: number, logId: string): Promise<ReviewCallResult>;
}

const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 2_000;
/** Our own credentials or RBAC are wrong: no point retrying soon. */
const MISCONFIGURED_RETRY_SECONDS = 30;
/** A TokenReview answer is a few KB; anything near this is not one. */
const REVIEW_RESPONSE_LIMIT_BYTES = 1024 * 1024;

function backoffMs(attempt: number): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  // Full jitter: a restart storm must not retry in lockstep.
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

function retryAfterHeaderMs(err: KubeApiError): number | undefined {
  return err.retryAfterSeconds === undefined ? undefined : err.retryAfterSeconds * 1000;
}

function describeFailure(err: unknown): { code: string; retryable: boolean; text: string } {
  if (err instanceof KubeApiError) {
    const code = err.status;
    if (code === 429) return { code: '429', retryable: true, text: 'Kubernetes API is throttling TokenReview (429)' };
    if (code >= 500) return { code: String(code), retryable: true, text: `Kubernetes API failed the TokenReview (${code})` };
    return { code: String(code), retryable: false, text: `Kubernetes API refused the TokenReview (${code})` };
  }
  const name = err instanceof Error ? err.name : '';
  if (name === 'TimeoutError' || name === 'AbortError') return { code: 'timeout', retryable: false, text: 'Kubernetes API did not answer the TokenReview in time' };
  return { code: 'error', retryable: true, text: 'Kubernetes API is unreachable' };
}

export function createTokenReviewClient(opts: {
  /** The API server's client (its own keep-alive connection pool). */
  api: KubeClient;
  limiter: RateLimiter;
  clock: Clock;
  log: Logger;
  metrics: KubeAuthMetrics;
}): TokenReviewClient {
  const { api, clock, log, metrics, limiter } = opts;
  return {
    async review(token, audiences, deadlineMs, logId) {
      for (let attempt = 0; ; attempt++) {
        const slot = await limiter.take(deadlineMs);
        if (!slot.ok) {
          metrics.rateLimited.inc();
          return { ok: false, reason: 'Kubernetes API call budget (--kube-qps/--kube-burst) is spent until after the request deadline', retryAfterSeconds: slot.retryAfterSeconds };
        }
        if (slot.waitedMs > 0) metrics.rateLimited.inc();
        const remainingMs = deadlineMs - clock.now();
        if (remainingMs <= 0) return { ok: false, reason: 'request deadline passed while waiting for Kubernetes API budget', retryAfterSeconds: 1 };
        const signal = AbortSignal.timeout(remainingMs);
        try {
          const body: TokenReview = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, ...(audiences.length > 0 ? { audiences: [...audiences] } : {}) } };
          const review = await api.create<TokenReview>('/apis/authentication.k8s.io/v1/tokenreviews', body, { signal, maxBytes: REVIEW_RESPONSE_LIMIT_BYTES });
          metrics.requests.inc({ code: '201' });
          return { ok: true, status: review.status ?? { authenticated: false } };
        } catch (err) {
          const failure = describeFailure(err);
          metrics.requests.inc({ code: failure.code });
          if (err instanceof KubeApiError && (err.status === 401 || err.status === 403)) {
            log.error({ tokenId: logId, code: err.status }, 'the CA cannot create TokenReviews: check its credentials and RBAC (create on tokenreviews.authentication.k8s.io)');
            return { ok: false, reason: `${failure.text}: the CA's own Kubernetes credentials or RBAC are wrong`, retryAfterSeconds: MISCONFIGURED_RETRY_SECONDS };
          }
          const waitMs = err instanceof KubeApiError ? (retryAfterHeaderMs(err) ?? backoffMs(attempt)) : backoffMs(attempt);
          const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000));
          if (!failure.retryable || clock.now() + waitMs >= deadlineMs) {
            log.warn({ tokenId: logId, code: failure.code, attempt }, `${failure.text}; giving up within the request deadline`);
            return { ok: false, reason: failure.text, retryAfterSeconds };
          }
          log.debug({ tokenId: logId, code: failure.code, attempt, waitMs }, `${failure.text}; retrying`);
          await sleep(clock, waitMs);
        }
      }
    },
  };
}
