// Retention inside serve: prunes past --retain a minute after start and every six hours; never
// with --retain 0; a failing prune is logged and retried at the next turn.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../src/time/index.ts';
import { startRetention, RETENTION_INTERVAL_MS } from '../../src/ledger/index.ts';

const DAY = 86_400_000;
beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

function fakes(fail = false) {
  const calls: number[] = [];
  const logs: string[] = [];
  let now = 1_000 * DAY;
  return {
    calls,
    logs,
    clock: { ...systemClock, now: () => now },
    advance: (ms: number) => (now += ms),
    ledger: {
      prune: async (beforeMs: number) => {
        calls.push(beforeMs);
        if (fail) throw new Error('disk full');
        return { removed: 3, anchorSeq: 10 };
      },
    },
    log: { info: (_o: unknown, m: string) => void logs.push(m), error: (_o: unknown, m: string) => void logs.push(m) } as unknown as Parameters<typeof startRetention>[3],
  };
}

describe('ledger retention', () => {
  it('prunes to now − retain a minute after start, then every six hours', async () => {
    const f = fakes();
    const r = startRetention(f.ledger, 400 * DAY, f.clock, f.log);
    await vi.advanceTimersByTimeAsync(59_000);
    expect(f.calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(f.calls).toEqual([f.clock.now() - 400 * DAY]);
    f.advance(RETENTION_INTERVAL_MS);
    await vi.advanceTimersByTimeAsync(RETENTION_INTERVAL_MS);
    expect(f.calls).toHaveLength(2);
    expect(f.logs).toContain('pruned ledger records past retention');
    r.stop();
    await vi.advanceTimersByTimeAsync(2 * RETENTION_INTERVAL_MS);
    expect(f.calls).toHaveLength(2);
  });

  it('keeps everything with --retain 0', async () => {
    const f = fakes();
    startRetention(f.ledger, 0, f.clock, f.log).stop();
    await vi.advanceTimersByTimeAsync(2 * RETENTION_INTERVAL_MS);
    expect(f.calls).toEqual([]);
  });

  it('logs a failed prune and tries again later', async () => {
    const f = fakes(true);
    const r = startRetention(f.ledger, DAY, f.clock, f.log);
    await vi.advanceTimersByTimeAsync(60_000 + RETENTION_INTERVAL_MS);
    expect(f.calls).toHaveLength(2);
    expect(f.logs.filter((l) => l.includes('prune failed'))).toHaveLength(2);
    r.stop();
  });
});
