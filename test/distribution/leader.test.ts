// Leader election for serve's singleton duties against the fake API server (real HTTPS, real 409s
// on the Lease): two replicas contend and exactly one leads; when the leader dies (its clock and
// timers stop, so it never renews) the other takes over within the lease duration; a leader that
// stops cleanly releases the Lease so the next one takes it at once. Time is a fake clock per
// replica, advanced together.

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startLeaderElection, type Leadership } from '../../src/distribution/leader.ts';
import { createLogger } from '../../src/observability/index.ts';
import { createRegistry } from '../../src/observability/index.ts';
import { FakeClock } from '../fakes/clock.ts';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import { kindOf } from '../fakes/kube_store.ts';

const LEASE_MS = 15_000;
const RETRY_MS = 5_000;
const LEASE_PATH = '/apis/coordination.k8s.io/v1/namespaces/meshca-system/leases';

describe('leader election for the singleton duties', () => {
  let api: FakeKubeApiServer;
  const log = createLogger('silent');

  beforeAll(async () => {
    api = await FakeKubeApiServer.start();
  });
  afterAll(async () => api?.close());

  /** Waits until at least `minCalls` Lease calls were made, all are answered, and no new one starts for a while. */
  async function settle(minCalls = 0): Promise<void> {
    let last = -1;
    let quiet = 0;
    await vi.waitFor(
      () => {
        const count = api.callCount(LEASE_PATH);
        const busy = api.calls.some((c) => c.status === undefined);
        quiet = count === last && !busy ? quiet + 1 : 0;
        last = count;
        if (count < minCalls || quiet < 3) throw new Error('Lease calls in flight');
      },
      { timeout: 10_000, interval: 50 },
    );
  }
  const calls = () => api.callCount(LEASE_PATH);

  function replica(identity: string, clock: FakeClock): Leadership {
    return startLeaderElection({ kubeConfig: api.kubeConfig(), namespace: 'meshca-system', clock, log, registry: createRegistry(), identity, leaseDurationMs: LEASE_MS });
  }

  it('two replicas contend and exactly one leads; the other takes over within the lease duration when the leader dies', async () => {
    const start = Date.now();
    const clocks = { a: new FakeClock(start), b: new FakeClock(start) };
    const a = replica('replica-a', clocks.a);
    const b = replica('replica-b', clocks.b);
    const changes: string[] = [];
    a.subscribe((l) => changes.push(`a:${l}`));
    b.subscribe((l) => changes.push(`b:${l}`));
    // Each replica's first try: a GET, then a create (one wins, one gets 409 AlreadyExists).
    await settle(calls() + 4);
    expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
    const [leader, follower, leaderClock, followerClock] = a.isLeader ? [a, b, clocks.a, clocks.b] : [b, a, clocks.b, clocks.a];
    const holder = () => (api.store.get(kindOf('leases'), 'meshca-system', 'meshca-leader') as unknown as { spec: { holderIdentity: string } }).spec.holderIdentity;
    expect(holder()).toBe(a.isLeader ? 'replica-a' : 'replica-b');

    // Many renewals later, still exactly one.
    for (let i = 0; i < 6; i++) {
      const before = calls();
      await Promise.all([leaderClock.advance(RETRY_MS), followerClock.advance(RETRY_MS)]);
      await settle(before + 3);
      expect(leader.isLeader).toBe(true);
      expect(follower.isLeader).toBe(false);
    }

    // The leader dies: its timers never fire again, it never renews. The follower takes over once
    // the lease has lapsed, and within the lease duration plus one retry of the last renewal.
    let waitedMs = 0;
    while (!follower.isLeader && waitedMs <= LEASE_MS + RETRY_MS) {
      await followerClock.advance(RETRY_MS / 5);
      waitedMs += RETRY_MS / 5;
      await settle();
    }
    expect(follower.isLeader).toBe(true);
    expect(waitedMs).toBeGreaterThan(LEASE_MS - RETRY_MS);
    expect(waitedMs).toBeLessThanOrEqual(LEASE_MS + RETRY_MS);
    expect(holder()).toBe(follower === a ? 'replica-a' : 'replica-b');
    await follower.stop();
    // The dead one is gone without a word; `stop` on it only cancels its (frozen) timers.
    await leader.stop().catch(() => undefined);
    expect(changes.filter((c) => c.endsWith(':true'))).toHaveLength(2);
  }, 30_000);

  it('a leader that stops releases the Lease: the next replica leads on its first try', async () => {
    const clock = new FakeClock(Date.now());
    let before = calls();
    const first = replica('replica-c', clock);
    await settle(before + 2);
    expect(first.isLeader).toBe(true);
    await first.stop();
    before = calls();
    const second = replica('replica-d', clock);
    await settle(before + 2);
    expect(second.isLeader).toBe(true);
    await second.stop();
  });
});
