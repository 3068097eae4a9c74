// The Clock's timers: the FakeClock that renewal and rotation tests drive, and systemClock's sleep.

import { describe, expect, it } from 'vitest';
import { sleep, systemClock } from '../../src/time/index.ts';
import { FakeClock } from '../fakes/clock.ts';

describe('FakeClock', () => {
  it('fires due timers in time order, repeats every() until cancelled, and never fires a cancelled timer', async () => {
    const clock = new FakeClock(1_000);
    const fired: string[] = [];
    clock.setTimer(300, () => fired.push(`once@${clock.now()}`));
    const tick = clock.every(200, () => fired.push(`tick@${clock.now()}`));
    clock.setTimer(100, () => fired.push('cancelled')).cancel();
    await clock.advance(650);
    expect(fired).toEqual(['tick@1200', 'once@1300', 'tick@1400', 'tick@1600']);
    expect(clock.now()).toBe(1_650);
    tick.cancel();
    await clock.advance(1_000);
    expect(fired).toHaveLength(4);
    expect(clock.pendingTimers).toBe(0);
  });

  it('lets a promise chain started by one timer run before the next timer fires', async () => {
    const clock = new FakeClock(0);
    const order: string[] = [];
    clock.setTimer(10, () => {
      void (async () => {
        await Promise.resolve();
        await Promise.resolve();
        order.push('chain done');
        clock.setTimer(0, () => order.push('scheduled by the chain'));
      })();
    });
    clock.setTimer(20, () => order.push('next timer'));
    await clock.advance(20);
    expect(order).toEqual(['chain done', 'scheduled by the chain', 'next timer']);
  });

  it('resolves sleep() only when advanced past it', async () => {
    const clock = new FakeClock(0);
    let woke = false;
    void sleep(clock, 500).then(() => (woke = true));
    await clock.advance(499);
    expect(woke).toBe(false);
    await clock.advance(1);
    expect(woke).toBe(true);
  });
});

describe('systemClock', () => {
  it('runs timers in real time and cancels them', async () => {
    let fired = 0;
    systemClock.setTimer(1, () => (fired += 1)).cancel();
    const t = systemClock.every(1, () => (fired += 10));
    await sleep(systemClock, 20);
    t.cancel();
    const after = fired;
    expect(after).toBeGreaterThanOrEqual(10);
    expect(after % 10).toBe(0);
    await sleep(systemClock, 10);
    expect(fired).toBe(after);
  });
});
