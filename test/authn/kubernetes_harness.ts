// Shared set-up for the Kubernetes authentication tests: a fake API server reached through a real
// kubeconfig file, a log that is captured (to prove no token reaches it), and a fresh registry.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKubernetesAuthenticators, type KubernetesAuthOptions } from '../../src/authn/kubernetes/index.ts';
import type { Authenticator, AuthOutcome } from '../../src/authn/types.ts';
import { createLogger, Registry, type Logger } from '../../src/observability/index.ts';
import { systemClock, type Clock } from '../../src/time/index.ts';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import type { FakeClock } from '../fakes/clock.ts';

export interface Harness {
  readonly fake: FakeKubeApiServer;
  readonly kubeconfigPath: string;
  readonly logs: string[];
  readonly log: Logger;
  close(): Promise<void>;
}

/** `now` is the fake API server's clock (call times, token lifetimes); real time by default. */
export async function startHarness(opts: { now?: () => number } = {}): Promise<Harness> {
  const fake = await FakeKubeApiServer.start(opts.now ? { now: opts.now } : {});
  const dir = mkdtempSync(join(tmpdir(), 'meshca-kube-authn-'));
  const logs: string[] = [];
  return {
    fake,
    kubeconfigPath: fake.writeKubeconfig(dir),
    logs,
    log: createLogger('debug', { write: (line: string) => void logs.push(line) }),
    async close() {
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `clock` forward while `pending()` callers are unanswered: waits (in real time) until each of
 * them is parked on one of its two clock timers (its deadline and a rate-limit or retry wait), so
 * no API call is in flight, then jumps to the next timer. Fake time never passes during a call.
 */
export async function driveUntilAnswered(clock: FakeClock, pending: () => number): Promise<void> {
  const giveUpAt = Date.now() + 20_000;
  while (pending() > 0) {
    while (clock.pendingTimers !== 2 * pending()) {
      if (Date.now() > giveUpAt) throw new Error(`stuck: ${pending()} unanswered, ${clock.pendingTimers} timers`);
      await new Promise((r) => setImmediate(r));
      if (pending() === 0) return;
    }
    await clock.advance(Math.max(0, clock.nextTimerAtMs! - clock.now()));
  }
}

/** A clock that runs with real time but can be pushed forward. */
export function steppableClock(): Clock & { advance(ms: number): void } {
  let offset = 0;
  return { ...systemClock, now: () => Date.now() + offset, advance: (ms) => void (offset += ms) };
}

export function kubeAuth(h: Harness, overrides: Partial<KubernetesAuthOptions> = {}): { authn: Authenticator; registry: Registry } {
  const registry = new Registry();
  const [authn] = createKubernetesAuthenticators({
    mode: 'tokenreview',
    audiences: ['meshca'],
    trustDomain: 'cluster.local',
    kubeconfigPath: h.kubeconfigPath,
    allowLegacyTokens: false,
    tokenCacheTtlMs: 5 * 60_000,
    tokenCacheSize: 100_000,
    kubeQps: 1000,
    kubeBurst: 1000,
    clock: systemClock,
    log: h.log,
    registry,
    ...overrides,
  });
  return { authn: authn!, registry };
}

export async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l)).reduce((sum, v) => sum + v.value, 0);
}

export function refusalOf(outcome: AuthOutcome): { kind: string; reason: string; retryAfterSeconds?: number } {
  if (outcome.ok) throw new Error(`expected a refusal, got caller ${outcome.caller.spiffeId.uri}`);
  return outcome;
}
