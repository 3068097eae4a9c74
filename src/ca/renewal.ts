// When the agent renews and how long it waits after a failure: pure functions of time and a
// random number, so tests can pin them. Never touches the network or a clock.

/** design.md: renew at 50% ± 5% of the lifetime. */
export const RENEW_RATIO = 0.5;
export const RENEW_JITTER = 0.05;
/** After a failed renewal: exponential backoff from 500 ms up to 60 s, with jitter. */
export const BACKOFF_INITIAL_MS = 500;
export const BACKOFF_MAX_MS = 60_000;
const BACKOFF_FACTOR = 2;
/** Each backoff delay is drawn from [delay × (1 − 0.2), delay × (1 + 0.2)]. */
const BACKOFF_JITTER = 0.2;

/**
 * The moment to renew a certificate received at `receivedAtMs`. The lifetime counts from when
 * we got it, not from notBefore: the CA backdates notBefore (60 s), and a 10-second certificate
 * would otherwise look more than half spent on arrival. `random` is uniform in [0, 1).
 */
export function renewAtMs(receivedAtMs: number, notBeforeMs: number, notAfterMs: number, random: number): number {
  const startMs = Math.max(receivedAtMs, notBeforeMs);
  const lifetimeMs = Math.max(0, notAfterMs - startMs);
  const ratio = RENEW_RATIO + (random * 2 - 1) * RENEW_JITTER;
  return startMs + Math.round(lifetimeMs * ratio);
}

/** Delay before retry number `attempt` (1 for the first retry). */
export function backoffDelayMs(attempt: number, random: number): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * BACKOFF_FACTOR ** Math.max(0, attempt - 1));
  const jittered = base * (1 + (random * 2 - 1) * BACKOFF_JITTER);
  return Math.round(Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_INITIAL_MS * (1 - BACKOFF_JITTER), jittered)));
}
