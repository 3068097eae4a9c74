// Issue 12, High 1: a CA issues only in the trust domain its certificates name. `ca init
// --trust-domain example.org` then serve/sign/token mint/root … without --trust-domain used to
// issue spiffe://cluster.local/… from the example.org CA; now every command reads the trust
// domain from the key store and a --trust-domain that disagrees is a start-up error naming both.

import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { startTestCa, tempDir } from '../helpers/serve.ts';
import { cli, mintToken } from './cli.ts';

let work: { path: string; cleanup: () => void };
let keys: string;
let csrFile: string;

beforeAll(async () => {
  work = tempDir();
  keys = join(work.path, 'keys');
  csrFile = join(work.path, 'w.csr');
  writeFileSync(csrFile, opensslCsr('ec-p256').csrPem);
  const init = await cli(['ca', 'init', '--keys', keys, '--trust-domain', 'example.org']);
  expect(init.stdout).toMatch(/for spiffe:\/\/example\.org/);
});
afterAll(() => work.cleanup());

describe('the trust domain comes from the key store', () => {
  it('serve without --trust-domain issues in the CA trust domain, and renews those leaves over mTLS', async () => {
    const ca = await startTestCa([], { keysDir: keys });
    const client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
    try {
      const csr = opensslCsr('ec-p256');
      const issued = await client.createCertificate({ csr: csr.csrPem, token: await mintToken(keys, 'shop', 'web') });
      expect(new X509Certificate(issued.certChain[0]!).subjectAltName).toBe('URI:spiffe://example.org/ns/shop/sa/web');
      const renewer = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost', clientCert: { certPem: issued.certChain[0]! + issued.certChain[1]!, keyPem: csr.keyPem } });
      try {
        const renewed = await renewer.createCertificate({ csr: opensslCsr('ec-p256').csrPem });
        expect(new X509Certificate(renewed.certChain[0]!).subjectAltName).toBe('URI:spiffe://example.org/ns/shop/sa/web');
      } finally {
        renewer.close();
      }
    } finally {
      client.close();
      await ca.stop();
    }
  });

  it('serve refuses to start with a --trust-domain that disagrees, naming both', async () => {
    await expect(startTestCa(['--trust-domain', 'cluster.local'], { keysDir: keys })).rejects.toThrow(
      /--trust-domain cluster\.local disagrees with the key store .*keys, whose CA is for trust domain example\.org/,
    );
    // Repeating the key store's own trust domain is fine.
    const ca = await startTestCa(['--trust-domain', 'example.org'], { keysDir: keys });
    await ca.stop();
  });

  it('sign issues in the key store trust domain and refuses any other', async () => {
    const ok = await cli(['sign', '--keys', keys, '--csr', csrFile, '--id', 'spiffe://example.org/ns/a/sa/b', '--db', 'memory:']);
    expect(ok.stderr).toMatch(/^issued spiffe:\/\/example\.org\/ns\/a\/sa\/b/);
    const foreign = await cli(['sign', '--keys', keys, '--csr', csrFile, '--id', 'spiffe://cluster.local/ns/a/sa/b', '--db', 'memory:']);
    expect(foreign.code).not.toBe(0);
    expect(foreign.stdout).toBe('');
    expect(foreign.stderr).toMatch(/spiffe:\/\/cluster\.local\/ns\/a\/sa\/b is not in trust domain example\.org/);
    const disagreeing = await cli(['sign', '--keys', keys, '--csr', csrFile, '--id', 'spiffe://example.org/ns/a/sa/b', '--db', 'memory:', '--trust-domain', 'cluster.local']);
    expect(disagreeing.stderr).toMatch(/--trust-domain cluster\.local disagrees with the key store/);
  });

  it('token mint names the key store trust domain and refuses a disagreeing one', async () => {
    const r = await cli(['token', 'mint', '--keys', keys, '--ns', 'shop', '--sa', 'web', '--json']);
    expect(JSON.parse(r.stdout).spiffeId).toBe('spiffe://example.org/ns/shop/sa/web');
    const bad = await cli(['token', 'mint', '--keys', keys, '--ns', 'shop', '--sa', 'web', '--trust-domain', 'cluster.local']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--trust-domain cluster\.local disagrees with the key store .*example\.org/);
  });

  it('root prepare refuses a disagreeing --trust-domain before touching the key store', async () => {
    const r = await cli(['root', 'prepare', '--keys', keys, '--db', 'memory:', '--trust-domain', 'cluster.local']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--trust-domain cluster\.local disagrees with the key store .*example\.org/);
    const status = await cli(['root', 'status', '--keys', keys, '--json']);
    expect(JSON.parse(status.stdout).roots).toHaveLength(1);
  });

  it('ca init records the trust domain once: its default applies only there', async () => {
    const fresh = join(work.path, 'fresh');
    expect((await cli(['ca', 'init', '--keys', fresh])).stdout).toMatch(/for spiffe:\/\/cluster\.local/);
    const r = await cli(['token', 'mint', '--keys', fresh, '--ns', 'a', '--sa', 'b', '--json']);
    expect(JSON.parse(r.stdout).spiffeId).toBe('spiffe://cluster.local/ns/a/sa/b');
  });
});
