// `meshca serve` against a Kubernetes API server loads no @kubernetes/client-node (~80 MB of RSS
// just to load, docs/performance.md): src/kube speaks to the API server itself. Only a kubeconfig
// whose authentication src/kube does not do (an exec plugin here) loads client-node, and then the
// calls still work. Nor does it load the undici package: requests go over node:https. Measured on a real process: a resolve hook records every module it loads.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_ADMIN_TOKEN, FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import { startServeProcess, tempDir } from '../helpers/serve.ts';

const CLIENT_NODE = /\/node_modules\/@kubernetes\/client-node\//;
/** The undici package (client-node's HTTP client): src/kube uses node:https, loading no HTTP library. */
const UNDICI = /\/node_modules\/undici\//;

const HOOK = `
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const urls = [];
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.push(r.url); return r; } });
process.on('exit', () => writeFileSync(process.env.MESHCA_TEST_MODULES_OUT, JSON.stringify(urls)));
`;

let api: FakeKubeApiServer;
let dir: { path: string; cleanup: () => void };

beforeAll(async () => {
  api = await FakeKubeApiServer.start();
  dir = tempDir('meshca-kube-modules-');
  writeFileSync(join(dir.path, 'hook.mjs'), HOOK);
});

afterAll(async () => {
  await api.close();
  dir.cleanup();
});

/** Runs serve with leader election, the bundle ConfigMaps and TokenReview on `kubeconfig` until it has written a Lease (authenticated: 2xx); returns the modules it loaded. */
async function modulesOfServe(kubeconfig: string, name: string): Promise<string[]> {
  const out = join(dir.path, `${name}.json`);
  const leaseWrites = () => api.calls.filter((c) => (c.method === 'PUT' || c.method === 'POST') && c.path.includes('/leases') && c.status !== undefined && c.status < 300).length;
  const before = leaseWrites();
  const serve = await startServeProcess(
    ['--keys', join(dir.path, `${name}-keys`), '--db', 'memory:', '--kubeconfig', kubeconfig, '--authn', 'tokenreview', '--audience', 'meshca', '--leader-election', 'on', '--distribute-bundle', 'on', '--log-level', 'info'],
    { NODE_OPTIONS: `--import=${pathToFileURL(join(dir.path, 'hook.mjs')).href}`, MESHCA_TEST_MODULES_OUT: out },
  );
  try {
    for (let i = 0; i < 400 && leaseWrites() <= before; i++) await new Promise((r) => setTimeout(r, 50));
    expect(leaseWrites()).toBeGreaterThan(before);
  } finally {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
  return JSON.parse(readFileSync(out, 'utf8')) as string[];
}

describe('meshca serve with a kubeconfig', () => {
  it('talks to the API server (Lease, ConfigMaps) without loading @kubernetes/client-node or undici', async () => {
    const loaded = await modulesOfServe(api.writeKubeconfig(dir.path, { file: 'token-kubeconfig' }), 'token');
    expect(loaded.some((u) => u.includes('/kube/client.'))).toBe(true);
    expect(loaded.filter((u) => CLIENT_NODE.test(u) || UNDICI.test(u))).toEqual([]);
  }, 60_000);

  it('would notice if it did: an exec-plugin kubeconfig loads client-node, and its calls still authenticate', async () => {
    const config = JSON.parse(api.kubeconfigText()) as { users: Array<{ user: Record<string, unknown> }> };
    const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { token: FAKE_ADMIN_TOKEN } });
    config.users[0]!.user = { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: process.execPath, args: ['-e', `process.stdout.write(${JSON.stringify(credential)})`], interactiveMode: 'Never' } };
    const path = join(dir.path, 'exec-kubeconfig');
    writeFileSync(path, JSON.stringify(config), { mode: 0o600 });
    const loaded = await modulesOfServe(path, 'exec');
    expect(loaded.some((u) => CLIENT_NODE.test(u))).toBe(true);
  }, 60_000);
});
