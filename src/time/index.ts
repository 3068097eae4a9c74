// Time for domain code: an injectable Clock and human durations ("90s", "10m", "1h", "400d").
// Domain code takes a Clock; only the edges use systemClock.

import { MeshcaError } from '../errors/index.ts';

/** A pending timer or ticker; cancel() is idempotent. */
export interface Timer {
  cancel(): void;
}

/**
 * Time and timers, injected so tests can advance time instead of sleeping (as SPIRE injects a
 * clock with timers and tickers). Timers never keep the process alive.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `fn` once after `delayMs` (at least 0). */
  setTimer(delayMs: number, fn: () => void): Timer;
  /** Calls `fn` every `intervalMs` until cancelled; the first call is one interval from now. */
  every(intervalMs: number, fn: () => void): Timer;
}

export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimer(delayMs: number, fn: () => void): Timer {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  every(intervalMs: number, fn: () => void): Timer {
    const t = setInterval(fn, intervalMs);
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
});

/** Resolves after `ms` on `clock` (a real wait on systemClock, an advance() away on a fake one). */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(ms, resolve));
}

/** Resolves once `signal` is aborted (at once if it already is): how long-running commands wait for SIGINT/SIGTERM. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export const SECOND_MS = 1000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;
export const YEAR_MS = 365 * DAY_MS;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: SECOND_MS,
  m: MINUTE_MS,
  h: HOUR_MS,
  d: DAY_MS,
  y: YEAR_MS,
};

/** Parses "500ms", "30s", "10m", "1h", "400d", "10y" or combinations like "1h30m". */
export function parseDuration(text: string, setting = 'duration'): number {
  const trimmed = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|y)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(trimmed); m; m = re.exec(trimmed)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (trimmed.length === 0 || consumed !== trimmed.length) {
    throw new MeshcaError(
      'BAD_CONFIG',
      `${setting}: "${text}" is not a duration; use a number with a unit, e.g. 90s, 10m, 1h, 400d`,
    );
  }
  return Math.round(total);
}

/** Formats milliseconds the way parseDuration reads them, largest whole unit first ("1h", "90s"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  const parts: string[] = [];
  for (const [unit, size] of [['d', DAY_MS], ['h', HOUR_MS], ['m', MINUTE_MS], ['s', SECOND_MS]] as const) {
    // "24h" and "48h" read better than "1d" and "2d"; days only from a week up.
    if (unit === 'd' && rest < 7 * DAY_MS) continue;
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0) parts.push(`${rest}ms`);
  return sign + parts.join('');
}
