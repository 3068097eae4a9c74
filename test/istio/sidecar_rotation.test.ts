// A root rotation seen from an istio-agent sidecar whose CA_ROOT_CA is the distributed
// meshca-root-cert ConfigMap: it keeps renewing through prepare, activate and retire, while a
// static copy of the old root (what "copy root-cert.pem into the sidecar" gives) breaks at activate.

import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDevIssuer } from '../../src/authn/index.ts';
import { main } from '../../src/cli/main.ts';
import { pemBlocks } from '../helpers/csr.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';
import { chainsToRoots, IstioAgentClient } from './istio_clients.ts';
import { until } from './waits.ts';

const dir = tempDir('meshca-istio-rotation-');
const keys = join(dir.path, 'keys');
const distributed = join(dir.path, 'configmap-root-cert.pem');
const staticCopy = join(dir.path, 'static-root-cert.pem');
let ca: TestCa;
let sidecar: IstioAgentClient;
let stale: IstioAgentClient;

const quiet = { stdout: () => {} };
/** What the bundle distribution writes into every namespace's meshca-root-cert ConfigMap. */
const distribute = () => writeFileSync(distributed, readFileSync(join(keys, 'root-cert.pem')));

beforeAll(async () => {
  expect(await main(['ca', 'init', '--keys', keys], quiet)).toBe(0);
  ca = await startTestCa(['--keys-poll', '100ms'], { keysDir: keys });
  distribute();
  writeFileSync(staticCopy, readFileSync(join(keys, 'root-cert.pem')));
  const tokenFile = join(dir.path, 'istio-token');
  writeFileSync(tokenFile, await (await loadDevIssuer(keys, false)).mint({ namespace: 'shop', serviceAccount: 'web', audience: 'meshca', ttlMs: 3_600_000, nowMs: Date.now() }));
  const opts = { caAddr: 'meshca.meshca-system.svc:15012', dialAddress: ca.server.grpcAddress, tokenFile };
  sidecar = new IstioAgentClient({ ...opts, caRootCaFile: distributed });
  stale = new IstioAgentClient({ ...opts, caRootCaFile: staticCopy });
});

afterAll(async () => {
  await ca?.stop();
  dir.cleanup();
});

describe('a sidecar trusting the distributed root ConfigMap', () => {
  it('keeps renewing through prepare, activate and retire; a static copy of the old root fails from activate on', async () => {
    const oldRoot = new X509Certificate(readFileSync(join(keys, 'root-cert.pem')));
    const renew = async (client: IstioAgentClient) => {
      const s = await client.fetchWorkloadSecret();
      const certs = pemBlocks(s.certificateChainPem).map((p) => new X509Certificate(p));
      const roots = pemBlocks(s.rootCertPem).map((p) => new X509Certificate(p));
      expect(chainsToRoots(certs[0]!, certs.slice(1, -roots.length), roots)).toBe(true);
      return { roots, leaf: certs[0]! };
    };
    expect((await renew(sidecar)).roots).toHaveLength(1);

    expect(await main(['root', 'prepare', '--keys', keys, '--db', 'memory:'], quiet)).toBe(0);
    await until(async () => (await renew(sidecar)).roots.length === 2, 'serve to publish the prepared root');
    distribute();
    await renew(sidecar);
    await renew(stale);

    expect(await main(['root', 'activate', '--keys', keys, '--db', 'memory:', '--force'], quiet)).toBe(0);
    const newIntermediate = new X509Certificate(readFileSync(join(keys, 'ca-cert.pem')));
    await until(async () => (await renew(sidecar)).leaf.checkIssued(newIntermediate), 'serve to sign with the new chain');
    await until(() => stale.fetchWorkloadSecret().then(() => false, () => true), 'the serving certificate to move to the new root');
    const afterActivate = await renew(sidecar);
    expect(afterActivate.roots.some((r) => r.raw.equals(oldRoot.raw))).toBe(true);

    expect(await main(['root', 'retire', '--keys', keys, '--db', 'memory:', '--force'], quiet)).toBe(0);
    await until(async () => (await renew(sidecar)).roots.length === 1, 'serve to drop the retired root');
    distribute();
    const afterRetire = await renew(sidecar);
    expect(afterRetire.roots[0]!.raw.equals(oldRoot.raw)).toBe(false);
    await expect(stale.fetchWorkloadSecret()).rejects.toBeDefined();
  }, 60_000);
});
