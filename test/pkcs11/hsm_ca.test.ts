// A CA whose intermediate key lives in SoftHSM2, through the real commands: `ca init --signer` makes
// the key in the token and writes only its reference; `serve --signer` issues chains OpenSSL
// verifies; `root rotate-intermediate --signer` makes the next key in the token and serve follows;
// a pulled token is UNAVAILABLE and /readyz 503 until it is back.

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDevIssuer } from '../../src/authn/index.ts';
import { main } from '../../src/cli/main.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr, opensslVerify } from '../helpers/csr.ts';
import { runMeshca, startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';
import { FakeClock } from '../fakes/clock.ts';
import { createSoftHsm, pullableModule, SOFTHSM_MISSING, type SoftHsm } from './softhsm.ts';

describe.skipIf(SOFTHSM_MISSING)(`a CA with its intermediate key in SoftHSM2${SOFTHSM_MISSING ? ` (skipped: ${SOFTHSM_MISSING})` : ''}`, () => {
  let hsm: SoftHsm;
  let work: { path: string; cleanup: () => void };
  let keys: string;
  let signer: string;
  let ca: TestCa | undefined;
  const clock = new FakeClock(Math.ceil(Date.now() / 1000) * 1000);

  async function cli(args: string[], env: Record<string, string> = {}) {
    let stdout = '';
    let stderr = '';
    const code = await main(args, { env, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), clock });
    return { code, stdout, stderr };
  }

  beforeAll(() => {
    hsm = createSoftHsm(['meshca-ca', 'other']);
    work = tempDir();
    keys = join(work.path, 'keys');
    signer = hsm.signerUri('meshca-ca');
  });
  afterAll(async () => {
    await ca?.stop();
    work?.cleanup();
    hsm?.cleanup();
  });

  it('ca init --signer makes the intermediate key in the token and writes only its reference', async () => {
    const r = await cli(['ca', 'init', '--keys', keys, '--signer', signer]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/made in pkcs11 token "meshca-ca" and cannot leave it/);
    expect(existsSync(join(keys, 'ca-key.pem'))).toBe(false);
    expect(readFileSync(join(keys, 'ca-key.pkcs11'), 'utf8')).toMatch(/^pkcs11:token=meshca-ca;object=meshca-intermediate;id=(%[0-9a-f]{2})+;type=private\n$/);
    // No PIN anywhere in the key store.
    for (const f of readdirSync(keys)) expect(readFileSync(join(keys, f), 'latin1')).not.toContain(hsm.pin);
  });

  it('serve without --signer refuses to start, naming the fix', async () => {
    await expect(startTestCa([], { keysDir: keys, clock })).rejects.toThrow(/in a hardware token .* start with --signer pkcs11:/);
  });

  it('serve --signer issues chains that openssl verifies; a pulled token is UNAVAILABLE and /readyz 503, and it recovers', async () => {
    const { api, pull } = pullableModule(hsm.modulePath);
    ca = await startTestCa(['--signer', signer], { keysDir: keys, clock, deps: { pkcs11Api: api } });
    const client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
    const dev = await loadDevIssuer(keys, false);
    const token = await dev.mint({ namespace: 'shop', serviceAccount: 'web', audience: 'meshca', ttlMs: 3_600_000, nowMs: clock.now() });
    const readyz = async () => (await fetch(`http://${ca!.server.httpAddress}/readyz`)).status;
    try {
      const { certChain } = await client.createCertificate({ csr: opensslCsr().csrPem, token });
      expect(opensslVerify(certChain[2]!, certChain[1]!, certChain[0]!)).toContain('OK');
      expect(await readyz()).toBe(200);

      pull(true);
      await expect(client.createCertificate({ csr: opensslCsr().csrPem, token })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE, details: expect.stringMatching(/PKCS#11 token "meshca-ca".*issuance resumes when the token is back/) });
      expect(await readyz()).toBe(503);
      pull(false);
      await clock.advance(1_000);
      expect(await readyz()).toBe(200);
      const again = await client.createCertificate({ csr: opensslCsr().csrPem, token });
      expect(opensslVerify(again.certChain[2]!, again.certChain[1]!, again.certChain[0]!)).toContain('OK');
    } finally {
      client.close();
    }
  });

  it('root rotate-intermediate --signer makes the next key in the token; serve signs with it within a poll', async () => {
    const before = readFileSync(join(keys, 'ca-key.pkcs11'), 'utf8');
    const r = await cli(['root', 'rotate-intermediate', '--keys', keys, '--signer', signer, '--db', 'memory:']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const after = readFileSync(join(keys, 'ca-key.pkcs11'), 'utf8');
    expect(after).not.toBe(before);
    expect(existsSync(join(keys, 'ca-key.pem'))).toBe(false);
    await clock.advance(1_000);
    const client = new CaClient({ address: ca!.server.grpcAddress, rootPem: ca!.rootPem, serverName: 'localhost' });
    try {
      const dev = await loadDevIssuer(keys, false);
      const token = await dev.mint({ namespace: 'shop', serviceAccount: 'web', audience: 'meshca', ttlMs: 3_600_000, nowMs: clock.now() });
      const { certChain } = await client.createCertificate({ csr: opensslCsr().csrPem, token });
      expect(certChain[1]!.trim()).toBe(readFileSync(join(keys, 'ca-cert.pem'), 'utf8').trim());
      expect(opensslVerify(certChain[2]!, certChain[1]!, certChain[0]!)).toContain('OK');
    } finally {
      client.close();
    }
  });

  it('meshca sign --signer issues from the token', async () => {
    const csr = join(work.path, 'w.csr');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(csr, opensslCsr().csrPem);
    const r = await cli(['sign', '--keys', keys, '--signer', signer, '--csr', csr, '--id', 'spiffe://cluster.local/ns/a/sa/b', '--db', 'memory:']);
    expect(r.code).toBe(0);
    const blocks = r.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!;
    expect(opensslVerify(blocks[2]!, blocks[1]!, blocks[0]!)).toContain('OK');
  });

  it('a wrong PIN or a PIN in the URI is refused before anything is made, and the PIN is never printed', async () => {
    const { writeFileSync } = await import('node:fs');
    const wrong = join(work.path, 'wrong-pin');
    writeFileSync(wrong, '999999\n', { mode: 0o600 });
    // A separate process: login state is per process, and this one is logged in already.
    const r = await runMeshca(['ca', 'init', '--keys', join(work.path, 'k2'), '--signer', `pkcs11:token=other;object=x?module-path=${hsm.modulePath}&pin-source=${wrong}`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/could not log in to PKCS#11 token "other".*PIN_INCORRECT/);
    expect(r.stderr + r.stdout).not.toContain('999999');
    expect(existsSync(join(work.path, 'k2', 'ca-cert.pem'))).toBe(false);
    const inline = await cli(['ca', 'init', '--keys', join(work.path, 'k3'), '--signer', `pkcs11:token=other;object=x?module-path=${hsm.modulePath}&pin-value=1234`]);
    expect(inline.code).not.toBe(0);
    expect(inline.stderr).toMatch(/pin-value is refused/);
  });

  it('ca csr --signer makes the key in the token for an offline root; ca install --signer installs the signed intermediate', async () => {
    const { execFileSync } = await import('node:child_process');
    const { writeFileSync } = await import('node:fs');
    const dir = work.path;
    const keys2 = join(dir, 'offline-keys');
    const csr = await cli(['ca', 'csr', '--keys', keys2, '--signer', signer]);
    expect(csr.code).toBe(0);
    expect(readFileSync(join(keys2, 'pending', 'ca-key.pkcs11'), 'utf8')).toMatch(/^pkcs11:token=meshca-ca;/);
    writeFileSync(join(dir, 'hsm.csr'), csr.stdout);
    const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'off.key', '-out', 'off.pem', '-days', '30', '-subj', '/CN=offline', '-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign']);
    writeFileSync(join(dir, 'ca.ext'), 'basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign\n');
    openssl(['req', '-in', 'hsm.csr', '-noout', '-verify']);
    openssl(['x509', '-req', '-in', 'hsm.csr', '-CA', 'off.pem', '-CAkey', 'off.key', '-CAcreateserial', '-days', '7', '-extfile', 'ca.ext', '-out', 'hsm-inter.pem']);
    // OpenSSL stamped the root with the real time; the fake clock catches up with it.
    await clock.advance(Math.max(0, Date.now() - clock.now()) + 1_000);
    const r = await cli(['ca', 'install', '--keys', keys2, '--signer', signer, '--cert', join(dir, 'hsm-inter.pem'), '--chain', join(dir, 'off.pem')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(existsSync(join(keys2, 'ca-key.pem'))).toBe(false);
    expect(existsSync(join(keys2, 'ca-key.pkcs11'))).toBe(true);
  });
});
