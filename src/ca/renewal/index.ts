// When the agent renews and how long it waits after a failure: pure functions of time and a
// random number, so tests can pin them; and the one engine that keeps a certificate fresh with
// them (agent, CA-direct SDS, the CA's serving certificate). The engine never knows the transport.
// A folder of its own so the agent loads it without the rest of src/ca (and its ASN.1 libraries).

import type { Clock, Timer } from '../../time/index.ts';

/** docs/architecture.md, "Defaults": renew at 50% ± 5% of the lifetime. */
export const RENEW_RATIO = 0.5;
export const RENEW_JITTER = 0.05;
/** After a failed renewal: exponential backoff from 500 ms up to 60 s, with jitter. */
export const BACKOFF_INITIAL_MS = 500;
export const BACKOFF_MAX_MS = 60_000;
const BACKOFF_FACTOR = 2;
/** Each backoff delay is drawn from [delay × (1 − 0.2), delay × (1 + 0.2)]. */
const BACKOFF_JITTER = 0.2;
/**
 * After a permanent refusal (the CA said no and will say it again, e.g. a TTL above its maximum):
 * retrying at backoff speed only floods it, so retries slow to this; a fix on either side is
 * picked up within it.
 */
export const PERMANENT_RETRY_MS = 10 * 60_000;

/** Transient failures (the CA is away, a token is being rotated) heal by retrying; permanent ones need a person. */
export type FailureKind = 'transient' | 'permanent';

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

/** When a held certificate became ours and when it is valid. */
export interface CertificateWindow {
  readonly receivedAtMs: number;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

export type RenewalOutcome = { readonly ok: true } | { readonly ok: false; readonly error: unknown };

export interface RenewalEngineOptions<T extends CertificateWindow> {
  readonly clock: Clock;
  /** Gets a new certificate (new key, CSR, issuance); throws on failure. */
  readonly obtain: () => Promise<T>;
  /** Hands a new certificate out (secret store, TLS provider); called before its renewal is scheduled. */
  readonly install: (cert: T, renewAtMs: number, previous: T | undefined) => void;
  /**
   * A renewal failed after `attempt` consecutive failures; `retryInMs` is the backoff. Return
   * 'stop' to give up (no retry is scheduled), anything else to retry then.
   */
  readonly failed?: (err: unknown, attempt: number, retryInMs: number, kind: FailureKind) => 'retry' | 'stop' | void;
  /** Tells permanent failures from transient ones; without it every failure is transient. */
  readonly classify?: (err: unknown) => FailureKind;
  /** Uniform in [0, 1); injectable so tests can pin the jitter. */
  readonly random?: () => number;
}

/**
 * One certificate kept fresh: renews at RENEW_RATIO ± RENEW_JITTER of its lifetime, one request in
 * flight at a time (a second caller joins the first), backs off after a failure (slowly after a
 * permanent one), and drops a
 * timer that a newer certificate or a manual renewal has superseded (as Istio's secret cache does).
 */
export class RenewalEngine<T extends CertificateWindow> {
  readonly #o: RenewalEngineOptions<T>;
  readonly #random: () => number;
  #current: T | undefined;
  #inFlight: Promise<RenewalOutcome> | undefined;
  #again: Promise<RenewalOutcome> | undefined;
  #timer: Timer | undefined;
  /** Bumped whenever a timer is set; a timer that fires with an older number is stale. */
  #generation = 0;
  #nextAttemptAtMs: number | undefined;
  #failures = 0;
  #stopped = false;

  constructor(options: RenewalEngineOptions<T>) {
    this.#o = options;
    this.#random = options.random ?? Math.random;
  }

  get current(): T | undefined {
    return this.#current;
  }
  get nextAttemptAtMs(): number | undefined {
    return this.#nextAttemptAtMs;
  }
  get consecutiveFailures(): number {
    return this.#failures;
  }
  get isStopped(): boolean {
    return this.#stopped;
  }
  /** True while a renewal or its scheduled retry is pending. */
  get isActive(): boolean {
    return this.#inFlight !== undefined || this.#timer !== undefined;
  }

  /** Renews now unless a renewal is already in flight (then joins it). */
  renew(): Promise<RenewalOutcome> {
    if (!this.#inFlight) {
      this.#inFlight = this.#renewOnce().finally(() => {
        this.#inFlight = undefined;
      });
    }
    return this.#inFlight;
  }

  /**
   * Renews because what a certificate is made from changed (e.g. a new signing CA): a renewal
   * already in flight may have used the old inputs, so one more follows it.
   */
  refresh(): Promise<RenewalOutcome> {
    if (!this.#inFlight) return this.renew();
    this.#again ??= this.#inFlight.then(() => {
      this.#again = undefined;
      return this.renew();
    });
    return this.#again;
  }

  /** Cancels the timer; an in-flight renewal finishes but installs nothing. */
  stop(): void {
    this.#stopped = true;
    this.#cancelTimer();
  }

  async #renewOnce(): Promise<RenewalOutcome> {
    if (this.#stopped) return { ok: false, error: new Error('renewal stopped') };
    try {
      const cert = await this.#o.obtain();
      if (this.#stopped) return { ok: false, error: new Error('renewal stopped') };
      const renewAt = renewAtMs(cert.receivedAtMs, cert.notBeforeMs, cert.notAfterMs, this.#random());
      const previous = this.#current;
      this.#current = cert;
      this.#failures = 0;
      this.#o.install(cert, renewAt, previous);
      this.#schedule(renewAt);
      return { ok: true };
    } catch (error) {
      if (this.#stopped) return { ok: false, error };
      this.#failures += 1;
      const kind = this.#o.classify?.(error) ?? 'transient';
      const delayMs = kind === 'permanent' ? PERMANENT_RETRY_MS : backoffDelayMs(this.#failures, this.#random());
      if (this.#o.failed?.(error, this.#failures, delayMs, kind) === 'stop') this.stop();
      else this.#schedule(this.#o.clock.now() + delayMs);
      return { ok: false, error };
    }
  }

  #schedule(atMs: number): void {
    if (this.#stopped) return;
    this.#cancelTimer();
    const generation = ++this.#generation;
    this.#nextAttemptAtMs = atMs;
    this.#timer = this.#o.clock.setTimer(atMs - this.#o.clock.now(), () => {
      // A timer replaced by a newer schedule (e.g. a manual renewal finished first) does nothing.
      if (generation !== this.#generation) return;
      this.#timer = undefined;
      void this.renew();
    });
  }

  #cancelTimer(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#generation++;
  }
}
