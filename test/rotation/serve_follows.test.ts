// A running `meshca serve` follows its key store: a root prepared by another process shows in
// /bundle (a SPIFFE JWK set) within 5 s, the admin API rotates for --admins only, the serving
// certificate moves to the new chain on activation, and /readyz fails once the chain has expired.

import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { adminServiceClient } from '../../src/admin/index.ts';
import { systemClock } from '../../src/time/index.ts';
import { loadDevIssuer } from '../../src/authn/index.ts';
import { main } from '../../src/cli/main.ts';
import { startServeProcess, startTestCa, tempDir, type ServeProcess } from '../helpers/serve.ts';

const ADMIN = 'spiffe://cluster.local/ns/ops/sa/rotator';
const pemBlocks = (t: string) => t.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];

interface Bundle {
  keys: Array<{ use: string; kty: string; crv?: string; x?: string; y?: string; x5c: string[] }>;
  spiffe_sequence: number;
  spiffe_refresh_hint: number;
}

async function getBundle(httpAddress: string): Promise<Bundle> {
  const res = await fetch(`http://${httpAddress}/bundle`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/json');
  return (await res.json()) as Bundle;
}

/** The root that the CA's serving certificate chains to, by trying each candidate alone. */
function servingCertVerifiesWith(address: string, rootPem: string): Promise<boolean> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const s = tls.connect({ host, port, ca: rootPem, servername: '', ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    s.once('secureConnect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function adminCall<T>(client: grpc.Client, method: string, token: string, req: object): Promise<T> {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) =>
    (client as unknown as Record<string, Function>)[method]!(req, md, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

describe('serve follows its key store', () => {
  const dir = tempDir('meshca-follow-');
  let serve: ServeProcess | undefined;
  afterAll(async () => {
    serve?.child.kill('SIGTERM');
    await serve?.exited;
    dir.cleanup();
  });

  it('serves a root prepared by another process within 5 s, as a SPIFFE bundle whose keys match the roots, and rotates over the admin API for admins only', async () => {
    const keys = join(dir.path, 'keys');
    expect(await main(['ca', 'init', '--keys', keys], { stdout: () => {} })).toBe(0);
    serve = await startServeProcess(['--keys', keys, '--db', `sqlite:${join(dir.path, 'ledger.db')}`, '--admins', ADMIN, '--max-ttl', '1h']);

    const before = await getBundle(serve.httpAddress);
    const oldRoot = readFileSync(join(keys, 'root-cert.pem'), 'utf8');
    expect(before.keys).toHaveLength(1);
    expect(before.keys[0]).toMatchObject({ use: 'x509-svid', kty: 'EC', crv: 'P-256' });
    expect(before.spiffe_refresh_hint).toBeGreaterThan(0);
    expect(Buffer.from(before.keys[0]!.x5c[0]!, 'base64').equals(new X509Certificate(oldRoot).raw)).toBe(true);

    expect(await main(['root', 'prepare', '--keys', keys, '--db', 'memory:'], { stdout: () => {} })).toBe(0);
    const preparedAt = Date.now();
    let after = before;
    while (after.keys.length < 2) {
      expect(Date.now() - preparedAt).toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 100));
      after = await getBundle(serve.httpAddress);
    }
    expect(after.spiffe_sequence).toBeGreaterThan(before.spiffe_sequence);
    const roots = pemBlocks(readFileSync(join(keys, 'root-cert.pem'), 'utf8')).map((p) => new X509Certificate(p));
    for (const [i, key] of after.keys.entries()) {
      expect(Buffer.from(key.x5c[0]!, 'base64').equals(roots[i]!.raw)).toBe(true);
      expect(createPublicKey({ key: key as never, format: 'jwk' }).equals(roots[i]!.publicKey)).toBe(true);
    }
    const newRoot = roots[1]!.toString();

    const dev = await loadDevIssuer(keys, false);
    const mint = (sa: string) => dev.mint({ namespace: 'ops', serviceAccount: sa, audience: 'meshca', ttlMs: 600_000, nowMs: Date.now() });
    const Client = adminServiceClient();
    const client = new Client(serve.grpcAddress, grpc.credentials.createSsl(Buffer.from(roots.map((r) => r.toString()).join(''))));
    try {
      await expect(adminCall(client, 'ActivateRoot', await mint('intruder'), { force: true })).rejects.toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
        details: 'spiffe://cluster.local/ns/ops/sa/intruder is not an admin (--admins)',
      });
      const token = await mint('rotator');
      const status = await adminCall<{ version: number; next_step: string; bundle_root_key_ids: string[] }>(client, 'Status', token, {});
      expect(status).toMatchObject({ version: 1, next_step: 'activate' });
      expect(status.bundle_root_key_ids).toHaveLength(2);
      await expect(adminCall(client, 'ActivateRoot', token, {})).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringMatching(/^refused: the new bundle has been out only/) });
      expect(await servingCertVerifiesWith(serve.grpcAddress, newRoot)).toBe(false);
      const activated = await adminCall<{ outcome: string; warning: string }>(client, 'ActivateRoot', token, { force: true });
      expect(activated.outcome).toBe('activated');
      expect(activated.warning).toMatch(/early \(--force\)/);
      // The serving certificate follows the swap at once: the new root alone now verifies it.
      const swappedBy = Date.now() + 2000;
      while (!(await servingCertVerifiesWith(serve.grpcAddress, newRoot))) expect(Date.now()).toBeLessThan(swappedBy);
      expect(await servingCertVerifiesWith(serve.grpcAddress, oldRoot)).toBe(false);
    } finally {
      client.close();
    }
  }, 40_000);

  it('fails /readyz once the active chain has expired', async () => {
    let offsetMs = 0;
    const ca = await startTestCa([], { clock: { ...systemClock, now: () => Date.now() + offsetMs } });
    try {
      const url = `http://${ca.server.httpAddress}/readyz`;
      expect((await fetch(url)).status).toBe(200);
      offsetMs = 400 * 86_400_000;
      const res = await fetch(url);
      expect(res.status).toBe(503);
      // The unauthenticated answer names the check; why is in the log (docs/security.md).
      expect(await res.text()).toMatch(/^chain$/m);
      expect(ca.logs.some((l) => /the active intermediate expired at/.test(JSON.stringify(l.failing)))).toBe(true);
    } finally {
      await ca.stop();
    }
  });
});

