// The Istio settings of `meshca serve` refuse bad values at start-up naming the setting, and the
// pod cache behind node authorization follows the API server through a restart of its watch.

import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPodIndex, type PodIndex } from '../../src/authn/kubernetes/pod_index.ts';
import { loadSettings } from '../../src/config/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import { serveConfigFrom, SERVE_OPTIONS } from '../../src/server/index.ts';
import { badConfigMessage } from '../config/bad_config.ts';
import { FakeClock } from '../fakes/clock.ts';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import { until } from './waits.ts';

const serve = (args: string[]) => serveConfigFrom(loadSettings(SERVE_OPTIONS, args, {}).values);
const refusal = (args: string[]): string => badConfigMessage(() => serve(args));

describe('Istio settings of meshca serve', () => {
  it('defaults: audience meshca, cluster id Kubernetes, no remote clusters, no trusted node agents', () => {
    const c = serve([]);
    expect(c.audiences).toEqual(['meshca']);
    expect(c.clusterId).toBe('Kubernetes');
    expect(c.clusters).toEqual([]);
    expect(c.trustedNodeAccounts).toEqual([]);
    expect(c.clusterDomain).toBe('cluster.local');
  });

  it('splits --san into DNS names and IP addresses', () => {
    const c = serve(['--san', 'ca.example.com,10.0.0.7,fd00::1']);
    expect(c.extraDnsNames).toEqual(['ca.example.com']);
    expect(c.extraIpAddresses).toEqual(['10.0.0.7', 'fd00::1']);
  });

  it('refuses malformed, duplicate or local --cluster entries, naming the setting', () => {
    const authn = ['--authn', 'tokenreview'];
    expect(refusal([...authn, '--cluster', 'cluster-2'])).toBe('--cluster: "cluster-2" is not <cluster id>=<kubeconfig file> or a directory of kubeconfigs');
    expect(refusal([...authn, '--cluster', '=/k'])).toMatch(/^--cluster: "=\/k" is not/);
    expect(refusal([...authn, '--cluster', 'a=/k1', '--cluster', 'a=/k2'])).toMatch(/^--cluster: cluster "a" is named twice/);
    expect(refusal([...authn, '--cluster', 'Kubernetes=/k'])).toMatch(/^--cluster: cluster "Kubernetes" is named twice \(or is --cluster-id/);
    expect(refusal(['--cluster', 'a=/k'])).toMatch(/^--cluster needs --authn/);
    expect(refusal(['--cluster-id', 'bad id'])).toMatch(/^--cluster-id: "bad id" is not a cluster id/);
  });

  it('reads a directory as Istio\'s remote-secret layout mounted as a volume: one kubeconfig per cluster id, hidden entries skipped', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshca-clusters-'));
    try {
      // What the kubelet makes of a Secret volume: ..data → a timestamped directory, each key a symlink into it.
      mkdirSync(join(dir, '..2026_11_30_21_00_00.123'));
      for (const id of ['cluster-2', 'cluster-3']) writeFileSync(join(dir, '..2026_11_30_21_00_00.123', id), 'kubeconfig');
      symlinkSync('..2026_11_30_21_00_00.123', join(dir, '..data'));
      for (const id of ['cluster-2', 'cluster-3']) symlinkSync(join('..data', id), join(dir, id));
      const c = serve(['--authn', 'tokenreview', '--cluster', dir, '--cluster', 'cluster-4=/k4']);
      expect(c.clusters).toEqual([
        { id: 'cluster-2', kubeconfigPath: join(dir, 'cluster-2') },
        { id: 'cluster-3', kubeconfigPath: join(dir, 'cluster-3') },
        { id: 'cluster-4', kubeconfigPath: '/k4' },
      ]);
      expect(refusal(['--authn', 'tokenreview', '--cluster', dir, '--cluster', 'cluster-3=/other'])).toMatch(/cluster "cluster-3" is named twice/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses malformed --trusted-node-accounts and needs Kubernetes authentication for them', () => {
    expect(refusal(['--authn', 'tokenreview', '--trusted-node-accounts', 'ztunnel'])).toBe('--trusted-node-accounts: "ztunnel" is not <namespace>/<service account>');
    expect(refusal(['--authn', 'tokenreview', '--trusted-node-accounts', 'a/b/c'])).toMatch(/is not <namespace>\/<service account>/);
    expect(refusal(['--trusted-node-accounts', 'istio-system/ztunnel'])).toMatch(/^--trusted-node-accounts needs --authn/);
  });

  it('refuses a malformed trust domain alias', () => {
    expect(refusal(['--trust-domain-aliases', 'Not A Domain'])).toMatch(/^--trust-domain-aliases: .*trust domain may contain only/);
  });
});

describe('the pod cache for node authorization', () => {
  let fake: FakeKubeApiServer;
  let dir: string;
  let index: PodIndex | undefined;
  beforeAll(async () => {
    fake = await FakeKubeApiServer.start({ namespaces: ['default', 'shop'] });
    dir = mkdtempSync(join(tmpdir(), 'meshca-pod-index-'));
  });
  afterAll(async () => {
    index?.stop();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists, watches, and after the API server drops its watch lists again once the restart timer fires', async () => {
    fake.addPod('shop', 'web-1', { serviceAccount: 'web', nodeName: 'node-a' });
    const clock = new FakeClock();
    index = startPodIndex({ kubeConfig: fake.kubeConfig(), clock, log: createLogger('silent') });
    await until(() => index!.synced, 'the first list');
    expect(index.hasServiceAccountOnNode('node-a', 'shop', 'web')).toBe(true);
    expect(index.hasServiceAccountOnNode('node-b', 'shop', 'web')).toBe(false);
    expect(index.pod('shop', 'web-1')).toMatchObject({ serviceAccount: 'web', nodeName: 'node-a' });

    fake.addPod('shop', 'api-1', { serviceAccount: 'api', nodeName: 'node-b' });
    await until(() => index!.hasServiceAccountOnNode('node-b', 'shop', 'api'), 'the watch to add api-1');

    await fake.goDown();
    await fake.comeBack();
    fake.addPod('shop', 'db-1', { serviceAccount: 'db', nodeName: 'node-a' });
    fake.deletePod('shop', 'web-1');
    // Nothing changes until the restart timer fires: the cache keeps its last view meanwhile.
    await until(() => clock.pendingTimers > 0, 'the watch to drop');
    expect(index.hasServiceAccountOnNode('node-a', 'shop', 'web')).toBe(true);
    await clock.advance(1000);
    await until(() => index!.hasServiceAccountOnNode('node-a', 'shop', 'db'), 'the second list');
    expect(index.hasServiceAccountOnNode('node-a', 'shop', 'web')).toBe(false);
    expect(index.synced).toBe(true);
  });
});
