// Client-side token bucket for Kubernetes API calls (--kube-qps, --kube-burst): the CA must never
// be the reason the API server falls over. A caller waits for a token only until its deadline.

import { MeshcaError } from '../../errors/index.ts';
import { sleep, type Clock } from '../../time/index.ts';

export type TakeResult = { readonly ok: true; readonly waitedMs: number } | { readonly ok: false; readonly retryAfterSeconds: number };

export interface RateLimiter {
  /** Takes one call's worth of budget, waiting for it unless that would pass `deadlineMs`. */
  take(deadlineMs: number): Promise<TakeResult>;
}

/**
 * Reservation-style bucket (as Go's x/time/rate): each taker reserves the next token and sleeps
 * until it is due, so N calls never start sooner than burst + qps·t allows, whatever the concurrency.
 */
export function createTokenBucket(opts: { qps: number; burst: number; clock: Clock }): RateLimiter {
  if (!(opts.qps > 0)) throw new MeshcaError('BAD_CONFIG', `kube-qps: ${opts.qps} is not a positive number of calls per second`);
  if (!Number.isInteger(opts.burst) || opts.burst < 1) throw new MeshcaError('BAD_CONFIG', `kube-burst: ${opts.burst} must be a whole number of at least 1`);
  const { qps, burst, clock } = opts;
  let tokens = burst;
  let lastMs = clock.now();
  return {
    async take(deadlineMs: number): Promise<TakeResult> {
      const now = clock.now();
      tokens = Math.min(burst, tokens + ((now - lastMs) * qps) / 1000);
      lastMs = now;
      tokens -= 1;
      if (tokens >= 0) return { ok: true, waitedMs: 0 };
      const waitMs = Math.ceil((-tokens / qps) * 1000);
      if (now + waitMs > deadlineMs) {
        // Give the reservation back; later reservations keep their (now slightly pessimistic) slots.
        tokens += 1;
        return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
      }
      await sleep(clock, waitMs);
      return { ok: true, waitedMs: waitMs };
    },
  };
}
