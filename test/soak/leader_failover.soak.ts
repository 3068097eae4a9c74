// Leader election between two real `meshca serve` processes sharing one key store Secret, against
// the fake API server, in real time: exactly one leads; when the leader is killed (SIGKILL, no
// chance to release its Lease) the other takes over within the lease duration plus one retry.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import { kindOf } from '../fakes/kube_store.ts';
import { startServeProcess, tempDir, type ServeProcess } from '../helpers/serve.ts';

const LEASE_MS = 3000;
const RETRY_MS = LEASE_MS / 3;

async function leads(p: ServeProcess): Promise<boolean> {
  try {
    const page = await (await fetch(`http://${p.httpAddress}/metrics`)).text();
    return /^meshca_leader 1$/m.test(page);
  } catch {
    return false;
  }
}

async function until(cond: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await cond()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not within ${timeoutMs} ms`);
}

describe('leader failover between two serve processes', () => {
  const dir = tempDir('meshca-failover-');
  let api: FakeKubeApiServer;
  const replicas: ServeProcess[] = [];

  beforeAll(async () => {
    api = await FakeKubeApiServer.start();
    const kubeconfig = api.writeKubeconfig(dir.path);
    const flags = ['--keys', 'k8s-secret:meshca-system/failover-keys', '--kubeconfig', kubeconfig, '--db', 'memory:', '--leader-election', 'on', '--leader-lease', `${LEASE_MS}ms`, '--distribute-bundle', 'off', '--log-level', 'info'];
    // One after the other: the first makes the CA in the Secret, the second finds it.
    replicas.push(await startServeProcess(flags, {}, 60_000));
    replicas.push(await startServeProcess(flags, {}, 60_000));
  }, 150_000);
  afterAll(async () => {
    for (const r of replicas) r.child.kill('SIGKILL');
    await api?.close();
    dir.cleanup();
  });

  it('exactly one leads; killing it hands the duties to the other within the lease duration', async () => {
    await until(async () => (await Promise.all(replicas.map(leads))).filter(Boolean).length === 1, 10_000);
    // Stays exactly one across several renewals.
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, RETRY_MS));
      expect((await Promise.all(replicas.map(leads))).filter(Boolean)).toHaveLength(1);
    }
    const leaderIndex = (await leads(replicas[0]!)) ? 0 : 1;
    const leader = replicas[leaderIndex]!;
    const follower = replicas[1 - leaderIndex]!;
    const holderBefore = (api.store.get(kindOf('leases'), 'meshca-system', 'meshca-leader') as unknown as { spec: { holderIdentity: string } }).spec.holderIdentity;

    leader.child.kill('SIGKILL');
    await leader.exited;
    const tookMs = await until(() => leads(follower), LEASE_MS + 2 * RETRY_MS + 2000);
    const holderAfter = (api.store.get(kindOf('leases'), 'meshca-system', 'meshca-leader') as unknown as { spec: { holderIdentity: string } }).spec.holderIdentity;
    expect(holderAfter).not.toBe(holderBefore);
    console.info(`leader killed; the other replica took over after ${tookMs} ms (lease ${LEASE_MS} ms, renewal every ${RETRY_MS} ms)`);
    expect(tookMs).toBeLessThanOrEqual(LEASE_MS + 2 * RETRY_MS + 2000);
  });
});
