// Refusals before authentication, counted instead of recorded one by one: anyone can send those,
// and one record each would let an anonymous flood fill the ledger's disk (and a full disk stops
// issuance for everyone). Per interval, one `refusals` record per (channel, peer host, error code)
// with a count; at most `maxKeys` such keys per interval, the rest counted in one '*' record.
// Authenticated denials are not counted here: they stay one record each.

import { describeError } from '../errors/index.ts';
import { MINUTE_MS, type Clock, type Timer } from '../time/index.ts';
import type { LedgerWriter, RefusalsEvent } from './events.ts';

/** One interval per record: a flood costs at most (maxKeys + 1) records a minute. */
export const DEFAULT_REFUSAL_INTERVAL_MS = MINUTE_MS;
/** Distinct (channel, peer, code) keys per interval before the rest go to the '*' bucket. */
export const DEFAULT_REFUSAL_MAX_KEYS = 100;
/** The overflow bucket's peer and code. */
export const OVERFLOW_KEY = '*';

export interface Refusal {
  readonly channel: string;
  /** The caller's address as the transport gives it; counted by host (the port changes per connection). */
  readonly peer?: string;
  readonly errorCode: string;
  /** What the client was told; the first one seen for a key is kept as its example. */
  readonly reason: string;
}

export interface RefusalCounter {
  count(refusal: Refusal): void;
  /** Appends the records of the interval so far (the timer does this every interval). */
  flush(): Promise<void>;
  /** Stops the timer and flushes what is left. */
  stop(): Promise<void>;
}

export interface RefusalCounterOptions {
  readonly ledger: LedgerWriter;
  readonly clock: Clock;
  readonly intervalMs?: number;
  readonly maxKeys?: number;
  /** A flush that could not be recorded (its counts are kept for the next one). */
  readonly onError?: (message: string) => void;
}

/** "10.0.0.7:51234" → "10.0.0.7", "[::1]:51234" → "::1"; anything else as it is. */
export function peerHost(peer: string | undefined): string {
  if (peer === undefined || peer === '') return 'unknown';
  const v6 = /^\[(.*)\]:\d+$/.exec(peer);
  if (v6) return v6[1]!;
  const v4 = /^([^:]*):\d+$/.exec(peer);
  return v4 ? v4[1]! : peer;
}

interface Bucket {
  readonly channel: string;
  readonly peer: string;
  readonly errorCode: string;
  reason: string;
  count: number;
  /** Distinct keys folded into the overflow bucket. */
  keys: number;
}

export function aggregateRefusals(opts: RefusalCounterOptions): RefusalCounter {
  const intervalMs = opts.intervalMs ?? DEFAULT_REFUSAL_INTERVAL_MS;
  const maxKeys = opts.maxKeys ?? DEFAULT_REFUSAL_MAX_KEYS;
  let buckets = new Map<string, Bucket>();
  let overflowKeys = new Set<string>();
  let overflow: Bucket | undefined;
  let sinceMs = opts.clock.now();
  let flushing: Promise<void> = Promise.resolve();

  function add(r: Refusal, n: number): void {
    const peer = peerHost(r.peer);
    const key = JSON.stringify([r.channel, peer, r.errorCode]);
    const bucket = buckets.get(key);
    if (bucket) {
      bucket.count += n;
      return;
    }
    if (buckets.size < maxKeys) {
      buckets.set(key, { channel: r.channel, peer, errorCode: r.errorCode, reason: r.reason, count: n, keys: 1 });
      return;
    }
    overflow ??= { channel: OVERFLOW_KEY, peer: OVERFLOW_KEY, errorCode: OVERFLOW_KEY, reason: '', count: 0, keys: 0 };
    overflow.count += n;
    // Distinct overflow keys are counted up to a bound too, so the set itself stays small.
    if (overflowKeys.size < maxKeys * 10 && !overflowKeys.has(key)) {
      overflowKeys.add(key);
      overflow.keys++;
    }
  }

  async function flushOnce(): Promise<void> {
    const untilMs = opts.clock.now();
    const taken = [...buckets.values(), ...(overflow ? [overflow] : [])];
    const from = sinceMs;
    buckets = new Map();
    overflowKeys = new Set();
    overflow = undefined;
    sinceMs = untilMs;
    if (taken.length === 0) return;
    const events: RefusalsEvent[] = taken.map((b) => ({
      type: 'refusals',
      timeMs: untilMs,
      sinceMs: from,
      decision: 'denied',
      channel: b.channel,
      peer: b.peer,
      errorCode: b.errorCode,
      reason: b.peer === OVERFLOW_KEY ? `refusals from ${b.keys >= maxKeys * 10 ? `at least ${b.keys}` : b.keys} more (channel, peer, code) keys than the ${maxKeys} recorded one by one` : b.reason,
      count: b.count,
    }));
    const failed = (await Promise.allSettled(events.map((e) => opts.ledger.append(e)))).flatMap((r, i) => (r.status === 'rejected' ? [{ bucket: taken[i]!, err: r.reason as unknown }] : []));
    if (failed.length === 0) return;
    opts.onError?.(`could not record ${failed.length} refusal counts: ${describeError(failed[0]!.err)}; kept for the next interval`);
    // Keep them: merged into the interval now running (bounded by the same key limit).
    for (const { bucket } of failed) add(bucket, bucket.count);
    sinceMs = Math.min(sinceMs, from);
  }

  function flush(): Promise<void> {
    flushing = flushing.then(flushOnce, flushOnce);
    return flushing;
  }

  const timer: Timer = opts.clock.every(intervalMs, () => void flush());
  return {
    count: (r) => add(r, 1),
    flush,
    async stop() {
      timer.cancel();
      await flush();
    },
  };
}
