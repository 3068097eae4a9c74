// Watches the benchmark's agents renew: how late each renewal finished against its schedule, how
// little life the served certificate had left when its successor arrived, failed attempts and why,
// which root each new certificate and bundle belong to, and this thread's event-loop delay.
// Separates "the bench starved its agents" from "the rotation broke trust". Reads agent status only.

import { X509Certificate } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { rootLabel, type MeshAgent } from '../test/rotation/mesh.ts';
import { pemBlocks } from '../test/helpers/csr.ts';

export interface Renewal {
  readonly agent: number;
  /** Date.now() when the new certificate was seen served (sampled). */
  readonly atMs: number;
  /** How long after it was due (ms). */
  readonly lateMs: number;
  /** The agent reconnected to the CA for it (its trusted roots changed since its last call). */
  readonly newChannel: boolean;
  readonly notAfterMs: number;
  /** Root labels (rootLabel) of the bundle that came with it, and of the root its chain ends at. */
  readonly bundleRoots: readonly string[];
  readonly chainRoot: string | undefined;
}

export interface RenewalReport {
  readonly renewals: readonly Renewal[];
  /** Renewal finished this long after it was due (ms): median, 99th percentile, max. */
  readonly lateMs: { p50: number; p99: number; max: number };
  /** The least life a served certificate had left when its successor arrived (ms; negative = expired first). */
  readonly minLeftAtRenewalMs: number;
  /** Samples in which an agent was serving an expired certificate. */
  readonly expiredSamples: number;
  readonly failedAttempts: number;
  readonly failureReasons: ReadonlyMap<string, number>;
  /** Event-loop delay of the thread running the agents (ms). */
  readonly loopDelayMs: { p99: number; max: number };
}

const SAMPLE_MS = 100;

function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Labels of the bundle's roots and of the one among them the chain ends at (parsed once per bundle). */
function classify(chainPem: string, bundlePem: string, cache: Map<string, X509Certificate[]>): { bundleRoots: string[]; chainRoot: string | undefined } {
  let roots = cache.get(bundlePem);
  if (!roots) cache.set(bundlePem, (roots = pemBlocks(bundlePem).map((p) => new X509Certificate(p))));
  const chain = pemBlocks(chainPem);
  const top = new X509Certificate(chain[chain.length - 1]!);
  const root = roots.find((r) => top.checkIssued(r) && top.verify(r.publicKey));
  return { bundleRoots: roots.map(rootLabel), chainRoot: root ? rootLabel(root) : undefined };
}

export function watchRenewals(agents: readonly MeshAgent[]): { stop(): RenewalReport } {
  const last = agents.map((a) => a.running.agent.status());
  const renewals: Renewal[] = [];
  const parsed = new Map<string, X509Certificate[]>();
  // The agent dials the CA on a new channel whenever its trusted roots changed since its last
  // call: renewal k reconnects when the bundle of renewal k-1 differs from that of k-2.
  const bundles = agents.map((a) => [a.running.agent.current()?.bundlePem ?? '']);
  let minLeft = Infinity;
  let expiredSamples = 0;
  let failedAttempts = 0;
  const reasons = new Map<string, number>();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const timer = setInterval(() => {
    const now = Date.now();
    agents.forEach((a, i) => {
      const was = last[i]!;
      const st = a.running.agent.status();
      const held = a.running.agent.current();
      if (held && st.notAfterMs !== was.notAfterMs && was.notAfterMs !== undefined) {
        const seen = bundles[i]!;
        const newChannel = seen.length >= 2 && seen[seen.length - 1] !== seen[seen.length - 2];
        seen.push(held.bundlePem);
        if (seen.length > 3) seen.shift();
        renewals.push({
          agent: i,
          atMs: now,
          lateMs: Math.max(0, now - (was.nextAttemptAtMs ?? now)),
          newChannel,
          notAfterMs: held.notAfterMs,
          ...classify(held.chainPem, held.bundlePem, parsed),
        });
        minLeft = Math.min(minLeft, was.notAfterMs - now);
      }
      if (st.consecutiveFailures > was.consecutiveFailures) {
        failedAttempts += st.consecutiveFailures - was.consecutiveFailures;
        const reason = (st.lastError ?? 'unknown').slice(0, 160);
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      }
      if (st.notAfterMs !== undefined && st.notAfterMs <= now) expiredSamples++;
      last[i] = st;
    });
  }, SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      loop.disable();
      const sorted = renewals.map((r) => r.lateMs).sort((x, y) => x - y);
      return {
        renewals,
        lateMs: { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted[sorted.length - 1] ?? 0 },
        minLeftAtRenewalMs: minLeft === Infinity ? NaN : minLeft,
        expiredSamples,
        failedAttempts,
        failureReasons: reasons,
        loopDelayMs: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
      };
    },
  };
}

/**
 * The rotation's safety margins as the agents lived them: the new root reached every agent's
 * bundle before activation, and the last old-chain certificate expired before retirement.
 */
export function rotationMargins(r: RenewalReport, agentCount: number, roots: { oldRoot: string; newRoot: string }, at: { activateMs: number; retireMs: number }): string {
  const firstWithNew = new Map<number, number>();
  for (const x of r.renewals) if (x.bundleRoots.includes(roots.newRoot) && !firstWithNew.has(x.agent)) firstWithNew.set(x.agent, x.atMs);
  const lastAgentMs = firstWithNew.size < agentCount ? Infinity : Math.max(...firstWithNew.values());
  const before = [...firstWithNew.values()].filter((ms) => ms < at.activateMs).length;
  const oldChain = r.renewals.filter((x) => x.chainRoot === roots.oldRoot);
  const lastOldIssuedMs = Math.max(...oldChain.map((x) => x.atMs));
  const lastOldExpiresMs = Math.max(...oldChain.map((x) => x.notAfterMs));
  const s = (ms: number) => `${(Math.abs(ms) < 50 ? 0 : ms / 1000).toFixed(1)} s`;
  return (
    `${before} / ${agentCount} agents held a bundle with the new root before activation, the last ${s(at.activateMs - lastAgentMs)} before it; ` +
    `the last old-chain certificate was served ${s(lastOldIssuedMs - at.activateMs)} after activation and expired ${s(at.retireMs - lastOldExpiresMs)} before retirement`
  );
}
