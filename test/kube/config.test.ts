// src/kube's reading of kubeconfigs and of the in-cluster service account: what it takes from each
// field, the error naming the field at fault, and which setups are handed to client-node.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMeshcaError } from '../../src/errors/index.ts';
import { KubeApiError, KubeClient, loadDefaultKubeConfig, loadInClusterConfig, loadKubeconfigFile, type KubeConfig } from '../../src/kube/index.ts';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import { tempDir } from '../helpers/serve.ts';

let dir: { path: string; cleanup: () => void };
let fake: FakeKubeApiServer;

beforeAll(async () => {
  dir = tempDir('meshca-kubeconfig-');
  fake = await FakeKubeApiServer.start();
});

afterAll(async () => {
  await fake.close();
  dir.cleanup();
});

const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const b64 = (s: string) => Buffer.from(s).toString('base64');

let n = 0;
function write(doc: unknown, text?: string): string {
  const path = join(dir.path, `kubeconfig-${n++}`);
  writeFileSync(path, text ?? JSON.stringify(doc));
  return path;
}

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://api.example:6443', ...cluster } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'team-a' } }, { name: 'other', context: { cluster: 'c', user: 'u', namespace: 'team-b' } }],
    'current-context': 'ctx',
    ...extra,
  };
}

function loadError(path: string): string {
  try {
    loadKubeconfigFile(path);
  } catch (err) {
    expect(isMeshcaError(err, 'BAD_CONFIG')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected the kubeconfig to be refused');
}

describe('kubeconfig files', () => {
  it('reads server, namespace, bearer token and CA data from the current context, without client-node', async () => {
    const kc = loadKubeconfigFile(write(kubeconfig({ 'certificate-authority-data': b64(CA_PEM) }, { token: 'tok-1' })));
    expect(kc.server).toBe('https://api.example:6443');
    expect(kc.namespace).toBe('team-a');
    expect(kc.delegated).toBe(false);
    expect(await kc.auth.headers()).toEqual({ authorization: 'Bearer tok-1' });
    expect((await kc.auth.tls()).ca?.toString()).toBe(CA_PEM);
    expect(kc.clusterCaPem()).toBe(CA_PEM);
  });

  it('takes a named context instead of the current one', () => {
    expect(loadKubeconfigFile(write(kubeconfig({}, { token: 't' })), 'other').namespace).toBe('team-b');
  });

  it('reads a token file (relative to the kubeconfig) and a CA file', async () => {
    writeFileSync(join(dir.path, 'token-file'), 'tok-from-file\n');
    writeFileSync(join(dir.path, 'ca.pem'), CA_PEM);
    const kc = loadKubeconfigFile(write(kubeconfig({ 'certificate-authority': 'ca.pem' }, { tokenFile: 'token-file' })));
    expect(await kc.auth.headers()).toEqual({ authorization: 'Bearer tok-from-file' });
    expect((await kc.auth.tls()).ca?.toString()).toBe(CA_PEM);
  });

  it('reads a client certificate and key, as data or as files', async () => {
    writeFileSync(join(dir.path, 'client.crt'), 'CERT');
    writeFileSync(join(dir.path, 'client.key'), 'KEY');
    const asData = loadKubeconfigFile(write(kubeconfig({}, { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') })));
    const asFiles = loadKubeconfigFile(write(kubeconfig({}, { 'client-certificate': join(dir.path, 'client.crt'), 'client-key': 'client.key' })));
    for (const kc of [asData, asFiles]) {
      const tls = await kc.auth.tls();
      expect(tls.cert?.toString()).toBe('CERT');
      expect(tls.key?.toString()).toBe('KEY');
      expect(tls.rejectUnauthorized).toBeUndefined();
      expect(await kc.auth.headers()).toEqual({});
    }
  });

  it('skips TLS verification only when the file says so', async () => {
    expect((await loadKubeconfigFile(write(kubeconfig({ 'insecure-skip-tls-verify': true }, { token: 't' }))).auth.tls()).rejectUnauthorized).toBe(false);
    expect((await loadKubeconfigFile(write(kubeconfig({ 'insecure-skip-tls-verify': 'yes' }, { token: 't' }))).auth.tls()).rejectUnauthorized).toBeUndefined();
  });

  it('refuses a bad file with an error naming the field at fault', () => {
    expect(loadError(join(dir.path, 'missing'))).toMatch(/cannot read/);
    expect(loadError(write(undefined, 'clusters: [unclosed'))).toMatch(/not YAML/);
    expect(loadError(write(kubeconfig({}, {}, { 'current-context': '' })))).toMatch(/current-context is not set/);
    expect(loadError(write(kubeconfig({}, {}, { 'current-context': 'nope' })))).toMatch(/contexts: no entry named "nope"/);
    expect(loadError(write(kubeconfig({ server: undefined }, {})))).toMatch(/clusters\["c"\]\.cluster\.server is not set/);
    expect(loadError(write(kubeconfig({ server: 'http://api:8080' }, {})))).toMatch(/clusters\["c"\]\.cluster\.server: "http:\/\/api:8080" is plain HTTP/);
    expect(loadError(write(kubeconfig({ 'certificate-authority-data': 'not base64!' }, {})))).toMatch(/clusters\["c"\]\.cluster\.certificate-authority-data is not base64/);
    expect(loadError(write(kubeconfig({ 'certificate-authority': '/nonexistent/ca.pem' }, {})))).toMatch(/clusters\["c"\]\.cluster\.certificate-authority: \/nonexistent\/ca\.pem does not exist/);
    expect(loadError(write(kubeconfig({}, { 'client-certificate-data': b64('CERT') })))).toMatch(/users\["u"\]\.user: client-certificate and client-key go together/);
    expect(loadError(write(kubeconfig({}, { token: 42 })))).toMatch(/users\["u"\]\.user\.token must be a string/);
  });

  it('hands exec plugins, auth providers and proxies to client-node (loaded then, not before)', async () => {
    const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { token: 'tok-from-exec' } });
    const exec = loadKubeconfigFile(write(kubeconfig({}, { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: process.execPath, args: ['-e', `process.stdout.write(${JSON.stringify(credential)})`], interactiveMode: 'Never' } })));
    expect(exec.delegated).toBe(true);
    expect(exec.server).toBe('https://api.example:6443');
    expect(exec.namespace).toBe('team-a');
    expect(exec.auth.proxyDispatcher).toBeUndefined();
    expect(await exec.auth.headers()).toMatchObject({ authorization: 'Bearer tok-from-exec' });
    expect(loadKubeconfigFile(write(kubeconfig({}, { 'auth-provider': { name: 'oidc', config: {} } }))).delegated).toBe(true);
    const proxied = loadKubeconfigFile(write(kubeconfig({ 'proxy-url': 'http://127.0.0.1:3128' }, { token: 't' })));
    expect(proxied.delegated).toBe(true);
    expect(proxied.auth.proxyDispatcher).toBeDefined();
  });

  it('$KUBECONFIG first, then ~/.kube/config, then in-cluster; nothing at all is a clear error', () => {
    const path = write(kubeconfig({}, { token: 't' }));
    expect(loadDefaultKubeConfig({ KUBECONFIG: path }).source).toBe(path);
    const home = join(dir.path, 'home');
    mkdirSync(join(home, '.kube'), { recursive: true });
    writeFileSync(join(home, '.kube', 'config'), JSON.stringify(kubeconfig({ server: 'https://home:6443' }, { token: 't' })));
    expect(loadDefaultKubeConfig({ HOME: home }).server).toBe('https://home:6443');
    expect(loadDefaultKubeConfig({ HOME: join(dir.path, 'nohome'), KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }).server).toBe('https://10.0.0.1:443');
    expect(() => loadDefaultKubeConfig({ HOME: join(dir.path, 'nohome') })).toThrow(/no Kubernetes API server configured/);
  });
});

describe('in-cluster configuration', () => {
  it('reads the service account token, CA and namespace; brackets an IPv6 address', async () => {
    const sa = join(dir.path, 'sa');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'sa-token');
    writeFileSync(join(sa, 'ca.crt'), CA_PEM);
    writeFileSync(join(sa, 'namespace'), 'meshca-system');
    const kc = loadInClusterConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, sa);
    expect(kc.server).toBe('https://[fd00::1]:443');
    expect(kc.namespace).toBe('meshca-system');
    expect(await kc.auth.headers()).toEqual({ authorization: 'Bearer sa-token' });
    expect((await kc.auth.tls()).ca?.toString()).toBe(CA_PEM);
  });

  it('refuses to start outside a pod, saying what to pass', () => {
    expect(() => loadInClusterConfig({}, join(dir.path, 'nowhere'))).toThrow(/not running in a Kubernetes pod.*pass --kubeconfig/);
  });
});

describe('KubeClient against the fake API server', () => {
  const client = (kc: KubeConfig) => new KubeClient(kc);

  it('maps error statuses to KubeApiError with the status, reason and Retry-After', async () => {
    const api = client(fake.kubeConfig());
    try {
      const missing = await api.get('/api/v1/namespaces/default/configmaps/nope').catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(KubeApiError);
      expect((missing as KubeApiError).status).toBe(404);
      expect((missing as KubeApiError).reason).toBe('NotFound');
      fake.injectFailures({ status: 429, count: 1, match: 'GET /api/v1/namespaces', retryAfterSeconds: 7 });
      const throttled = (await api.get('/api/v1/namespaces').catch((e: unknown) => e)) as KubeApiError;
      expect(throttled.status).toBe(429);
      expect(throttled.retryAfterSeconds).toBe(7);
      const stranger = client(fake.kubeConfig({ token: 'not-the-admin-token' }));
      expect(((await stranger.get('/api/v1/namespaces').catch((e: unknown) => e)) as KubeApiError).status).toBe(401);
      await stranger.close();
    } finally {
      fake.clearFailures();
      await api.close();
    }
  });

  it('refuses a response over its size limit', async () => {
    const api = client(fake.kubeConfig());
    try {
      await expect(api.get('/api/v1/namespaces', { maxBytes: 10 })).rejects.toThrow(/larger than 10 bytes/);
    } finally {
      await api.close();
    }
  });

  it('creates, patches and watches from a resourceVersion; close() ends the watch', async () => {
    const api = client(fake.kubeConfig());
    const created = await api.create<{ metadata: { resourceVersion: string } }>('/api/v1/namespaces/default/configmaps', { metadata: { name: 'kube-client-w' }, data: { v: '1' } });
    const seen: string[] = [];
    let ended: unknown = 'not yet';
    // Not awaited: the fake, unlike kube-apiserver, sends the response head with the first event.
    const watching = api.watch<{ metadata: { name: string }; data: { v: string } }>('/api/v1/namespaces/default/configmaps', { resourceVersion: created.metadata.resourceVersion }, (phase, obj) => seen.push(`${phase} ${obj.metadata.name} ${obj.data.v}`), (err) => (ended = err));
    await new Promise((r) => setTimeout(r, 100));
    await api.patch('/api/v1/namespaces/default/configmaps/kube-client-w', { data: { v: '2' } });
    await watching;
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(['MODIFIED kube-client-w 2']);
    await api.close();
    expect(ended).not.toBe('not yet');
  });
});
