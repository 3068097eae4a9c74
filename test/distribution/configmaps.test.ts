// The trust bundle ConfigMap in every namespace, through @kubernetes/client-node against the fake
// API server: created for new namespaces, updated on bundle change, repaired after edits and
// deletions, and written by exactly one of two replicas (the Lease holder).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { BUNDLE_CONFIGMAP_KEY, BUNDLE_CONFIGMAP_NAME, DISTRIBUTOR_LEASE_NAME, type ConfigMapDistributor } from '../../src/distribution/index.ts';
import { startConfigMapDistributor } from '../../src/distribution/configmaps.ts';
import { createLogger } from '../../src/observability/index.ts';
import { systemClock } from '../../src/time/index.ts';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import { kindOf } from '../fakes/kube_store.ts';

const CM = kindOf('configmaps');
const NS = kindOf('namespaces');
const LEASES = kindOf('leases');
const quiet = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));

async function eventually<T>(fn: () => T | undefined, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = fn();
      if (v !== undefined && v !== false) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function bundleIn(api: FakeKubeApiServer, ns: string): string | undefined {
  try {
    return (api.store.get(CM, ns, BUNDLE_CONFIGMAP_NAME).data as Record<string, string>)[BUNDLE_CONFIGMAP_KEY];
  } catch {
    return undefined;
  }
}

describe('trust bundle ConfigMaps', () => {
  let api: FakeKubeApiServer;
  let bundle = 'BUNDLE-1\n';
  const listeners = new Set<() => void>();
  const distributors: ConfigMapDistributor[] = [];

  const start = (identity: string) => {
    const d = startConfigMapDistributor({
      kubeConfig: api.kubeConfig(),
      namespace: 'meshca-system',
      bundlePem: () => bundle,
      onBundleChange: (l) => (listeners.add(l), () => listeners.delete(l)),
      clock: systemClock,
      log: quiet,
      identity,
      leaseDurationMs: 1500,
      resyncMs: 60_000,
    });
    distributors.push(d);
    return d;
  };

  beforeEach(async () => {
    api = await FakeKubeApiServer.start();
    bundle = 'BUNDLE-1\n';
  });
  afterEach(async () => {
    for (const d of distributors.splice(0)) await d.stop();
    await api.close();
  });

  it('puts the bundle in every namespace, and in a namespace created later', async () => {
    start('replica-a');
    for (const ns of ['default', 'kube-system', 'meshca-system']) await eventually(() => bundleIn(api, ns) === 'BUNDLE-1\n', `ConfigMap in ${ns}`);
    api.store.create(NS, undefined, { metadata: { name: 'team-new' } });
    await eventually(() => bundleIn(api, 'team-new') === 'BUNDLE-1\n', 'ConfigMap in the new namespace');
  });

  it('repairs a ConfigMap that was deleted or edited, and follows a bundle change', async () => {
    start('replica-a');
    await eventually(() => bundleIn(api, 'default') === 'BUNDLE-1\n', 'first ConfigMap');
    api.store.delete(CM, 'default', BUNDLE_CONFIGMAP_NAME, undefined);
    await eventually(() => bundleIn(api, 'default') === 'BUNDLE-1\n', 'recreated after deletion');
    const edited = api.store.get(CM, 'default', BUNDLE_CONFIGMAP_NAME);
    api.store.update(CM, 'default', BUNDLE_CONFIGMAP_NAME, { ...edited, data: { [BUNDLE_CONFIGMAP_KEY]: 'tampered' } });
    await eventually(() => bundleIn(api, 'default') === 'BUNDLE-1\n', 'repaired after an edit');
    bundle = 'BUNDLE-2\n';
    for (const l of listeners) l();
    for (const ns of ['default', 'kube-public']) await eventually(() => bundleIn(api, ns) === 'BUNDLE-2\n', `new bundle in ${ns}`);
  });

  it('lets exactly one of two replicas write, and hands over when the leader stops', async () => {
    const a = start('replica-a');
    await eventually(() => a.isLeader, 'a leads');
    const b = start('replica-b');
    await new Promise((r) => setTimeout(r, 1200));
    expect(b.isLeader).toBe(false);
    expect((api.store.get(LEASES, 'meshca-system', DISTRIBUTOR_LEASE_NAME).spec as { holderIdentity: string }).holderIdentity).toBe('replica-a');
    await a.stop();
    await eventually(() => b.isLeader, 'b takes over', 4000);
    api.store.delete(CM, 'kube-public', BUNDLE_CONFIGMAP_NAME, undefined);
    await eventually(() => bundleIn(api, 'kube-public') === 'BUNDLE-1\n', 'b repairs');
  });
});
