// The key store in a Kubernetes Secret, against the fake API server (real HTTPS, real status codes
// and resourceVersion conflicts): `ca init` and the root rotation walk through the real command
// line with a kubeconfig, two processes racing `prepare` (a real 409, retried), a conflict made
// in the middle of a step, a replica following another's change through its watch, a running
// serve following a rotation, and the Secret's size across a full rotation.

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { loadSettings } from '../../src/config/index.ts';
import { SecretKeyStore, SECRET_SIZE_LIMIT_BYTES, secretDataBytes, parseSecretRef, dataKeyOf, pathOfDataKey } from '../../src/keystore/k8s_secret.ts';
import { createLogger } from '../../src/observability/index.ts';
import { LEDGER_KEY_FILE, memoryLedger } from '../../src/ledger/index.ts';
import { DEV_TOKEN_KEY_FILE } from '../../src/authn/index.ts';
import { prepareRoot, rotationPolicy, type RotationContext } from '../../src/rotation/index.ts';
import { serveConfigFrom, SERVE_OPTIONS, startCaServer } from '../../src/server/index.ts';
import { systemClock } from '../../src/time/index.ts';
import { FakeKubeApiServer, type KubeObject } from '../fakes/kube_api_server.ts';
import { kindOf } from '../fakes/kube_store.ts';
import { runMeshca, tempDir } from '../helpers/serve.ts';

const NS = 'meshca-system';
const NAME = 'meshca-cacerts';
const KEYS = `k8s-secret:${NS}/${NAME}`;
const SECRETS = kindOf('secrets');

async function meshca(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}


/** A fake API server and a kubeconfig for it, started before a describe block's tests and closed after. */
function fakeApiForBlock(prefix: string): { readonly dir: { path: string; cleanup: () => void }; api: FakeKubeApiServer; kubeconfig: string } {
  const dir = tempDir(prefix);
  const fake = { dir, api: undefined as unknown as FakeKubeApiServer, kubeconfig: '' };
  beforeAll(async () => {
    fake.api = await FakeKubeApiServer.start();
    fake.kubeconfig = fake.api.writeKubeconfig(dir.path);
  });
  afterAll(async () => {
    await fake.api?.close();
    dir.cleanup();
  });
  return fake;
}

describe('--keys k8s-secret:<namespace>/<name>', () => {
  const fake = fakeApiForBlock('meshca-secret-');
  const dir = fake.dir;
  const db = `sqlite:${join(dir.path, 'ledger.db')}`;
  const secret = (): KubeObject & { data: Record<string, string> } => fake.api.store.get(SECRETS, NS, NAME) as KubeObject & { data: Record<string, string> };
  const file = (name: string) => Buffer.from(secret().data[name]!, 'base64').toString('utf8');
  const sizeOf = () => secretDataBytes(new Map(Object.entries(secret().data).map(([k, v]) => [k, Buffer.from(v, 'base64')])));
  const openStore = () => SecretKeyStore.open({ ref: parseSecretRef(KEYS), kubeConfig: fake.api.kubeConfig(), clock: systemClock });
  const rotation = (store: SecretKeyStore): RotationContext => ({
    store, clock: systemClock, policy: rotationPolicy(86_400_000), ledger: memoryLedger(), actor: 'cli:test', organization: 'meshca test',
    rootTtlMs: 10 * 86_400_000, caTtlMs: 86_400_000, trustDomain: 'cluster.local',
  });

  it('names files as Secret keys and back, and refuses a malformed reference', () => {
    expect(dataKeyOf(join('rotation', 'roots', 'ab12', 'root-cert.pem'))).toBe('rotation__roots__ab12__root-cert.pem');
    expect(pathOfDataKey('rotation__roots__ab12__root-cert.pem')).toBe(join('rotation', 'roots', 'ab12', 'root-cert.pem'));
    expect(() => pathOfDataKey('rotation____..__x')).toThrow(/not a key store file name/);
    expect(() => parseSecretRef('k8s-secret:Meshca/x')).toThrow(/expected k8s-secret:<namespace>\/<name>/);
    expect(() => parseSecretRef('k8s-secret:meshca-system')).toThrow(/expected k8s-secret/);
  });

  it('ca init writes the whole key store into one Secret from outside the cluster, and refuses to overwrite it', async () => {
    const made = await meshca(['ca', 'init', '--keys', KEYS, '--kubeconfig', fake.kubeconfig]);
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    expect(made.stdout).toContain(`in ${KEYS} (root`);
    expect(Object.keys(secret().data).sort()).toEqual(['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem', 'root-key.pem']);
    expect(file('ca-key.pem')).toContain('PRIVATE KEY');
    expect(secret().type).toBe('Opaque');

    const again = await meshca(['ca', 'init', '--keys', KEYS, '--kubeconfig', fake.kubeconfig]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`meshca ca init: the key store ${KEYS} already holds a CA; pass --force to replace it (the old keys are lost)\n`);
  });

  it('walks prepare → activate → retire against the Secret; two processes racing prepare make exactly one root (the 409 is re-read, not overwritten); the Secret stays far under 1 MiB', async () => {
    const sizes = [sizeOf()];
    const root = (...args: string[]) => meshca(['root', ...args, '--keys', KEYS, '--kubeconfig', fake.kubeconfig, '--db', db]);
    const rootProcess = (...args: string[]) => runMeshca(['root', ...args, '--keys', KEYS, '--kubeconfig', fake.kubeconfig, '--db', db]);
    const oldRoot = file('root-cert.pem');

    const putsBefore = fake.api.callCount(`PUT /api/v1/namespaces/${NS}/secrets/${NAME}`);
    const [a, b] = await Promise.all([rootProcess('prepare', '--json'), rootProcess('prepare', '--json')]);
    expect([a.stderr, b.stderr]).toEqual(['', '']);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect([JSON.parse(a.stdout).outcome, JSON.parse(b.stdout).outcome].sort()).toEqual(['already-prepared', 'prepared']);
    expect(JSON.parse(a.stdout).rootKeyId).toBe(JSON.parse(b.stdout).rootKeyId);
    expect(fake.api.callCount(`PUT /api/v1/namespaces/${NS}/secrets/${NAME}`) - putsBefore).toBeGreaterThanOrEqual(1);
    expect(Object.keys(secret().data).filter((k) => /^rotation__roots__[0-9a-f]+__root-cert\.pem$/.test(k))).toHaveLength(2);
    expect(file('root-cert.pem').startsWith(oldRoot)).toBe(true);
    sizes.push(sizeOf());

    expect((await root('activate', '--force')).code).toBe(0);
    sizes.push(sizeOf());
    expect((await root('rotate-intermediate')).code).toBe(0);
    sizes.push(sizeOf());
    expect((await root('retire', '--force')).code).toBe(0);
    sizes.push(sizeOf());
    expect(file('root-cert.pem').match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    expect(file('root-cert.pem')).not.toContain(oldRoot.trim());
    // A retired root's key leaves the Secret with it.
    expect(Object.keys(secret().data).filter((k) => k.startsWith('rotation__roots__') && k.endsWith('root-key.pem'))).toHaveLength(1);
    const statusRun = await root('status', '--json');
    expect(statusRun.stderr).toBe('');
    const status = JSON.parse(statusRun.stdout);
    expect(status.bundle.rootKeyIds).toHaveLength(1);

    // Worst case: the largest the Secret was at any step, with room for many more rotations.
    const worst = Math.max(...sizes);
    expect(worst).toBeLessThan(SECRET_SIZE_LIMIT_BYTES / 20);
    console.info(`key store Secret size across a full rotation (bytes): ${sizes.join(' → ')}`);
  }, 60_000);

  it('re-reads and re-runs a step when the Secret changes between its read and its write (409), never overwriting the other write', async () => {
    const store = await openStore();
    try {
      let runs = 0;
      const result = await store.transact(async (current) => {
        runs += 1;
        if (runs === 1) {
          // Someone else writes meanwhile: a label change bumps the resourceVersion.
          const s = secret();
          fake.api.store.update(SECRETS, NS, NAME, { ...s, metadata: { ...s.metadata, labels: { ...s.metadata.labels, touched: 'yes' } } });
        }
        return { result: current.state.version };
      }, () => Date.now());
      expect(runs).toBe(1);
      expect(typeof result).toBe('number');

      // A step that changes something is retried after the 409, on the fresh Secret.
      let changingRuns = 0;
      const ctx = rotation(store);
      const wrapped: RotationContext = {
        ...ctx,
        store: {
          location: store.location,
          denyList: store.denyList,
          snapshot: (n) => store.snapshot(n),
          changeToken: () => store.changeToken(),
          transact: (t, now) =>
            store.transact(async (cur) => {
              changingRuns += 1;
              if (changingRuns === 1) {
                const s = secret();
                fake.api.store.update(SECRETS, NS, NAME, { ...s, metadata: { ...s.metadata, labels: { ...s.metadata.labels, touched: 'again' } } });
              }
              return t(cur);
            }, now),
        },
      };
      const conflictsBefore = fake.api.calls.filter((c) => c.method === 'PUT' && c.status === 409).length;
      const prepared = await prepareRoot(wrapped, { keyType: 'ec-p256' });
      expect(prepared.outcome).toBe('prepared');
      expect(changingRuns).toBe(2);
      expect(fake.api.calls.filter((c) => c.method === 'PUT' && c.status === 409).length).toBe(conflictsBefore + 1);
      // Both writes are there: the other writer's label and our new root.
      expect(secret().metadata.labels).toMatchObject({ touched: 'again' });
      expect(Object.keys(secret().data).some((k) => k.startsWith(`rotation__roots__${prepared.rootKeyId}__`))).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('a replica following the Secret sees another replica’s change within 5 s (watch)', async () => {
    const follower = await openStore();
    const writer = await openStore();
    try {
      follower.follow();
      const before = follower.changeToken();
      const rootsBefore = follower.snapshot(Date.now()).state.roots.length;
      // Retire what the last test prepared, then prepare anew: any change will do.
      await writer.transact(async (cur) => ({ change: { roots: cur.state.roots, intermediates: cur.state.intermediates }, result: undefined }), () => Date.now());
      await vi.waitFor(() => expect(follower.changeToken()).not.toBe(before), { timeout: 5000, interval: 50 });
      expect(follower.changeToken()).toBe(writer.changeToken());
      expect(follower.snapshot(Date.now()).state.version).toBe(writer.snapshot(Date.now()).state.version);
      expect(follower.snapshot(Date.now()).state.roots.length).toBe(rootsBefore);
    } finally {
      await follower.close();
      await writer.close();
    }
  });

  it('answers a clear error when RBAC forbids the Secret', async () => {
    fake.api.setForbidden('secrets');
    try {
      const r = await meshca(['root', 'status', '--keys', KEYS, '--kubeconfig', fake.kubeconfig]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/cannot read the key store Secret k8s-secret:meshca-system\/meshca-cacerts: HTTP 403 \(RBAC: the service account needs get\/update\/watch/);
    } finally {
      fake.api.setForbidden('secrets', false);
    }
  });
});

describe('meshca serve with its keys in a Secret', () => {
  const fake = fakeApiForBlock('meshca-secret-serve-');
  const dir = fake.dir;

  async function startServe() {
    const { values } = loadSettings(
      SERVE_OPTIONS,
      ['--keys', 'k8s-secret:meshca-system/ha-keys', '--kubeconfig', fake.kubeconfig, '--db', `sqlite:${join(dir.path, 'ledger.db')}`, '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--keys-poll', '200ms', '--distribute-bundle', 'off', '--log-level', 'silent'],
      {},
    );
    return startCaServer(serveConfigFrom(values), { clock: systemClock, log: createLogger('silent') });
  }

  it('two replicas starting on an empty Secret share one CA and one ledger key; both follow a root prepared from outside within 5 s', async () => {
    const [a, b] = await Promise.all([startServe(), startServe()]);
    try {
      const s = fake.api.store.get(kindOf('secrets'), 'meshca-system', 'ha-keys') as KubeObject & { data: Record<string, string> };
      expect(Object.keys(s.data)).toEqual(expect.arrayContaining(['ca-key.pem', 'root-cert.pem', LEDGER_KEY_FILE, DEV_TOKEN_KEY_FILE]));
      expect(a.context.state.authority.rootKeyId).toBe(b.context.state.authority.rootKeyId);
      expect(a.context.state.authority.keyId).toBe(b.context.state.authority.keyId);

      const prepared = await runMeshca(['root', 'prepare', '--keys', 'k8s-secret:meshca-system/ha-keys', '--kubeconfig', fake.kubeconfig, '--db', 'memory:', '--json']);
      expect(prepared.stderr).toBe('');
      const rootKeyId = JSON.parse(prepared.stdout).rootKeyId as string;
      for (const replica of [a, b]) {
        await vi.waitFor(() => expect(replica.context.state.bundlePem.length).toBe(2), { timeout: 5000, interval: 50 });
      }
      const bundle = await (await fetch(`http://${a.httpAddress}/bundle`)).json() as { keys: unknown[] };
      expect(bundle.keys).toHaveLength(2);
      expect(rootKeyId).toMatch(/^[0-9a-f]+$/);
    } finally {
      await Promise.all([a.close(500), b.close(500)]);
    }
  }, 30_000);
});
