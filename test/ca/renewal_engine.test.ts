// The one renewal engine (agent, CA-direct SDS, serving certificate), driven by a fake clock:
// when it renews, that it keeps one request in flight, how it backs off, and that a timer from a
// superseded certificate does nothing.

import { describe, expect, it } from 'vitest';
import { BACKOFF_INITIAL_MS, PERMANENT_RETRY_MS, RenewalEngine, type CertificateWindow } from '../../src/ca/index.ts';
import { FakeClock } from '../fakes/clock.ts';

const LIFETIME_MS = 10_000;

function harness(opts: { fail?: () => boolean; random?: () => number; permanent?: () => boolean } = {}) {
  const clock = new FakeClock();
  const obtained: number[] = [];
  const installed: Array<{ atMs: number; renewAtMs: number; first: boolean }> = [];
  const failures: Array<{ attempt: number; retryInMs: number; kind?: string }> = [];
  let release: (() => void) | undefined;
  let holdNext = false;
  const engine = new RenewalEngine<CertificateWindow>({
    clock,
    random: opts.random ?? (() => 0.5),
    obtain: async () => {
      obtained.push(clock.now());
      if (holdNext) {
        holdNext = false;
        await new Promise<void>((r) => (release = r));
      }
      if (opts.fail?.()) throw new Error('CA unreachable');
      const now = clock.now();
      return { receivedAtMs: now, notBeforeMs: now - 60_000, notAfterMs: now + LIFETIME_MS };
    },
    install: (_cert, renewAtMs, previous) => void installed.push({ atMs: clock.now(), renewAtMs, first: previous === undefined }),
    failed: (_err, attempt, retryInMs, kind) => void failures.push({ attempt, retryInMs, ...(opts.permanent ? { kind } : {}) }),
    ...(opts.permanent ? { classify: () => (opts.permanent!() ? ('permanent' as const) : ('transient' as const)) } : {}),
  });
  return { clock, engine, obtained, installed, failures, hold: () => (holdNext = true), release: () => release?.() };
}

describe('RenewalEngine', () => {
  it('renews at half the lifetime counted from receipt, again and again', async () => {
    const h = harness();
    const t0 = h.clock.now();
    expect(await h.engine.renew()).toEqual({ ok: true });
    expect(h.installed).toEqual([{ atMs: t0, renewAtMs: t0 + 5_000, first: true }]);
    await h.clock.advance(4_999);
    expect(h.obtained).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.obtained).toEqual([t0, t0 + 5_000]);
    expect(h.installed[1]).toEqual({ atMs: t0 + 5_000, renewAtMs: t0 + 10_000, first: false });
    await h.clock.advance(5_000);
    expect(h.obtained).toHaveLength(3);
  });

  it('puts the renewal within 45%–55% of the lifetime by the jitter', async () => {
    for (const [random, offsetMs] of [[0, 4_500], [0.999999, 5_500]] as const) {
      const h = harness({ random: () => random });
      await h.engine.renew();
      expect(h.engine.nextAttemptAtMs! - h.clock.now()).toBe(offsetMs);
    }
  });

  it('keeps one request in flight: concurrent callers join it', async () => {
    const h = harness();
    h.hold();
    const a = h.engine.renew();
    const b = h.engine.renew();
    expect(a).toBe(b);
    await h.clock.advance(0);
    expect(h.obtained).toHaveLength(1);
    h.release();
    expect(await a).toEqual({ ok: true });
    expect(h.installed).toHaveLength(1);
  });

  it('refresh() during a renewal in flight runs one more after it (the first may have used old inputs)', async () => {
    const h = harness();
    h.hold();
    const first = h.engine.renew();
    const again = h.engine.refresh();
    expect(h.engine.refresh()).toBe(again);
    h.release();
    await first;
    expect(await again).toEqual({ ok: true });
    expect(h.obtained).toHaveLength(2);
    expect(h.installed).toHaveLength(2);
  });

  it('backs off exponentially after failures and resets after a success', async () => {
    let failing = true;
    const h = harness({ fail: () => failing });
    const outcome = await h.engine.renew();
    expect(outcome.ok).toBe(false);
    await h.clock.advance(500 + 1_000 + 2_000);
    expect(h.failures).toEqual([
      { attempt: 1, retryInMs: 500 },
      { attempt: 2, retryInMs: 1_000 },
      { attempt: 3, retryInMs: 2_000 },
      { attempt: 4, retryInMs: 4_000 },
    ]);
    expect(h.engine.consecutiveFailures).toBe(4);
    failing = false;
    await h.clock.advance(4_000);
    expect(h.installed).toHaveLength(1);
    expect(h.engine.consecutiveFailures).toBe(0);
    expect(h.engine.nextAttemptAtMs).toBe(h.clock.now() + 5_000);
  });

  it('drops the timer of a superseded certificate: a manual renewal moves the next one, the old time does nothing', async () => {
    const h = harness();
    const t0 = h.clock.now();
    await h.engine.renew();
    await h.clock.advance(3_000);
    await h.engine.renew(); // renewAt is now t0 + 3 s + 5 s
    await h.clock.advance(2_000); // t0 + 5 s: the first certificate's renewal time
    expect(h.obtained).toEqual([t0, t0 + 3_000]);
    await h.clock.advance(3_000);
    expect(h.obtained).toEqual([t0, t0 + 3_000, t0 + 8_000]);
    expect(h.clock.pendingTimers).toBe(1);
  });

  it('stops when the owner says so after a failure, and after stop() installs nothing', async () => {
    const clock = new FakeClock();
    let attempts = 0;
    const engine = new RenewalEngine<CertificateWindow>({
      clock,
      obtain: async () => {
        attempts += 1;
        throw new Error('no');
      },
      install: () => undefined,
      failed: () => 'stop',
    });
    expect((await engine.renew()).ok).toBe(false);
    expect(engine.isStopped).toBe(true);
    await clock.advance(60_000);
    expect(attempts).toBe(1);

    const h = harness();
    h.hold();
    const pending = h.engine.renew();
    h.engine.stop();
    h.release();
    expect((await pending).ok).toBe(false);
    expect(h.installed).toEqual([]);
    expect(h.clock.pendingTimers).toBe(0);
  });

  it('slows retries to the long interval after a permanent refusal, and backs off normally once it turns transient', async () => {
    let permanent = true;
    const h = harness({ fail: () => true, permanent: () => permanent });
    const t0 = h.clock.now();
    await h.engine.renew();
    expect(h.failures).toEqual([{ attempt: 1, retryInMs: PERMANENT_RETRY_MS, kind: 'permanent' }]);
    await h.clock.advance(PERMANENT_RETRY_MS - 1);
    expect(h.obtained).toEqual([t0]);
    permanent = false;
    await h.clock.advance(1);
    expect(h.obtained).toEqual([t0, t0 + PERMANENT_RETRY_MS]);
    expect(h.failures[1]).toEqual({ attempt: 2, retryInMs: BACKOFF_INITIAL_MS * 2, kind: 'transient' });
  });
});
