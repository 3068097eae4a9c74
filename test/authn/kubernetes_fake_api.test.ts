// The fake Kubernetes API server answers @kubernetes/client-node the way kube-apiserver does:
// CRUD, conflicts, patches, watches, Status objects and codes, over real HTTPS from a kubeconfig.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiException,
  AuthenticationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';

let fake: FakeKubeApiServer;
let dir: string;
let kc: KubeConfig;

beforeAll(async () => {
  fake = await FakeKubeApiServer.start();
  dir = mkdtempSync(join(tmpdir(), 'meshca-kube-'));
  kc = new KubeConfig();
  kc.loadFromFile(fake.writeKubeconfig(dir));
});

afterAll(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<{ code: number; body: { kind: string; reason: string; message: string; code: number }; headers: Record<string, string> }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiException) {
      const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
      return { code: err.code, body, headers: err.headers as Record<string, string> };
    }
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('fake Kubernetes API server', () => {
  it('creates, reads, updates and deletes a ConfigMap through client-node, with resourceVersion bookkeeping', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const created = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'bundle', labels: { app: 'meshca' } }, data: { 'root.pem': 'A' } } });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    const rv1 = Number(created.metadata?.resourceVersion);
    const read = await core.readNamespacedConfigMap({ name: 'bundle', namespace: 'default' });
    expect(read.data).toEqual({ 'root.pem': 'A' });
    const updated = await core.replaceNamespacedConfigMap({ name: 'bundle', namespace: 'default', body: { ...read, data: { 'root.pem': 'B' } } });
    expect(Number(updated.metadata?.resourceVersion)).toBeGreaterThan(rv1);
    const list = await core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'app=meshca' });
    expect(list.items.map((i) => i.metadata?.name)).toEqual(['bundle']);
    await core.deleteNamespacedConfigMap({ name: 'bundle', namespace: 'default' });
    const gone = await failure(core.readNamespacedConfigMap({ name: 'bundle', namespace: 'default' }));
    expect(gone.code).toBe(404);
    expect(gone.body).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404, message: 'configmaps "bundle" not found' });
  });

  it('answers a stale update with 409 Conflict and a duplicate create with 409 AlreadyExists', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const first = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'race' }, data: { v: '1' } } });
    await core.replaceNamespacedConfigMap({ name: 'race', namespace: 'default', body: { ...first, data: { v: '2' } } });
    const stale = await failure(core.replaceNamespacedConfigMap({ name: 'race', namespace: 'default', body: { ...first, data: { v: '3' } } }));
    expect(stale.code).toBe(409);
    expect(stale.body.reason).toBe('Conflict');
    expect(stale.body.message).toContain('the object has been modified');
    const dup = await failure(core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'race' } } }));
    expect(dup.body).toMatchObject({ reason: 'AlreadyExists', code: 409 });
    expect((await core.readNamespacedConfigMap({ name: 'race', namespace: 'default' })).data).toEqual({ v: '2' });
  });

  it('applies JSON patches (client-node default) and merge patches', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'patched' }, data: { a: '1', b: '2' } } });
    await core.patchNamespacedConfigMap({ name: 'patched', namespace: 'default', body: [{ op: 'replace', path: '/data/a', value: 'x' }] });
    const merged = await core.patchNamespacedConfigMap(
      { name: 'patched', namespace: 'default', body: { data: { b: null, c: '3' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(merged.data).toEqual({ a: 'x', c: '3' });
  });

  it('keeps Leases with optimistic concurrency, as leader election needs', async () => {
    const coord = kc.makeApiClient(CoordinationV1Api);
    const lease = await coord.createNamespacedLease({ namespace: 'meshca-system', body: { metadata: { name: 'meshca-rotation' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } } });
    const taken = await coord.replaceNamespacedLease({ name: 'meshca-rotation', namespace: 'meshca-system', body: { ...lease, spec: { ...lease.spec, holderIdentity: 'b' } } });
    expect(taken.spec?.holderIdentity).toBe('b');
    const lost = await failure(coord.replaceNamespacedLease({ name: 'meshca-rotation', namespace: 'meshca-system', body: { ...lease, spec: { ...lease.spec, holderIdentity: 'c' } } }));
    expect(lost.code).toBe(409);
  });

  it('stores Secrets base64-encoded and refuses objects in a namespace that does not exist', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const s = await core.createNamespacedSecret({ namespace: 'meshca-system', body: { metadata: { name: 'cacerts' }, stringData: { 'ca-cert.pem': 'PEM' } } });
    expect(s.data).toEqual({ 'ca-cert.pem': Buffer.from('PEM').toString('base64') });
    expect(s.type).toBe('Opaque');
    const missing = await failure(core.createNamespacedSecret({ namespace: 'nowhere', body: { metadata: { name: 'x' } } }));
    expect(missing.body).toMatchObject({ reason: 'NotFound', message: 'namespaces "nowhere" not found' });
    await core.createNamespace({ body: { metadata: { name: 'nowhere' } } });
    await core.createNamespacedSecret({ namespace: 'nowhere', body: { metadata: { name: 'x' } } });
  });

  it('streams watch events from a resourceVersion, through client-node Watch', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const list = await core.listNamespacedConfigMap({ namespace: 'kube-public' });
    const seen: string[] = [];
    const watch = new Watch(kc);
    const done = new Promise<void>((resolve) => {
      void watch
        .watch('/api/v1/namespaces/kube-public/configmaps', { resourceVersion: list.metadata?.resourceVersion }, (type, obj: V1ConfigMap) => {
          seen.push(`${type} ${obj.metadata?.name} ${obj.data?.v ?? ''}`.trim());
          if (seen.length === 3) resolve();
        }, () => {})
        .then((ctl) => done.finally(() => ctl.abort()));
    });
    await new Promise((r) => setTimeout(r, 100));
    await core.createNamespacedConfigMap({ namespace: 'kube-public', body: { metadata: { name: 'w' }, data: { v: '1' } } });
    await core.patchNamespacedConfigMap({ name: 'w', namespace: 'kube-public', body: [{ op: 'replace', path: '/data/v', value: '2' }] });
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'other-namespace' } } });
    await core.deleteNamespacedConfigMap({ name: 'w', namespace: 'kube-public' });
    await done;
    expect(seen).toEqual(['ADDED w 1', 'MODIFIED w 2', 'DELETED w 2']);
  });

  it('answers 401 to a client with the wrong credentials and 403 when RBAC denies', async () => {
    const stranger = new KubeConfig();
    stranger.loadFromString(fake.kubeconfigText({ token: 'not-the-admin-token' }));
    const unauth = await failure(stranger.makeApiClient(CoreV1Api).listNamespace());
    // client-node drops the body of a 401 ("Unauthorized"); the code is what callers see.
    expect(unauth.code).toBe(401);
    fake.setForbidden('tokenreviews');
    try {
      const denied = await failure(kc.makeApiClient(AuthenticationV1Api).createTokenReview({ body: { spec: { token: 'x' } } }));
      expect(denied.code).toBe(403);
      expect(denied.body.message).toContain('cannot create resource "tokenreviews" in API group "authentication.k8s.io"');
    } finally {
      fake.setForbidden('tokenreviews', false);
    }
  });

  it('injects 429 with Retry-After and 500, and counts the calls it received', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    fake.resetCalls();
    fake.injectFailures({ status: 429, count: 1, match: 'GET /api/v1/namespaces', retryAfterSeconds: 3 });
    fake.injectFailures({ status: 500, count: 1, match: 'GET /api/v1/namespaces' });
    const throttled = await failure(core.listNamespace());
    expect(throttled.code).toBe(429);
    expect(throttled.headers['retry-after']).toBe('3');
    expect(throttled.body).toMatchObject({ reason: 'TooManyRequests', details: { retryAfterSeconds: 3 } });
    const broken = await failure(core.listNamespace());
    expect(broken.body).toMatchObject({ reason: 'InternalError', code: 500 });
    expect((await core.listNamespace()).items.length).toBeGreaterThan(0);
    expect(fake.callsByRoute()['GET /api/v1/namespaces']).toBe(3);
    expect(fake.callsPerSecond('GET /api/v1/namespaces').reduce((a, b) => a + b, 0)).toBe(3);
  });
});
