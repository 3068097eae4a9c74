// CreateCertificate end to end: a real grpc-js client over TLS against `meshca serve` on a free port.

import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { SignJWT, base64url } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDevIssuer, type Authenticator } from '../../src/authn/index.ts';
import type { LedgerEvent } from '../../src/ledger/index.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr, opensslVerify } from '../helpers/csr.ts';
import { startTestCa, type TestCa } from '../helpers/serve.ts';
import type { CaContext } from '../../src/server/context.ts';

let ca: TestCa;
let client: CaClient;
let mint: (o?: { ns?: string; sa?: string; aud?: string; nowMs?: number; ttlMs?: number; pod?: string }) => Promise<string>;

function ledgerEvents(): LedgerEvent[] {
  return (ca.server.context.ledger as unknown as { events: LedgerEvent[] }).events;
}
function grantedCount(): number {
  return ledgerEvents().filter((e) => e.type === 'issuance' && e.decision === 'granted').length;
}

/** An authenticator that takes a while, to hold a request in flight. */
const slowAuthenticator: Authenticator = {
  name: 'slow-test',
  async authenticate(req) {
    if (req.bearerToken !== 'slow-token') return { ok: false, kind: 'skip', reason: 'not the slow token' };
    await new Promise((r) => setTimeout(r, 800));
    const { kubernetesSpiffeId } = await import('../../src/spiffe/index.ts');
    return { ok: true, caller: { spiffeId: kubernetesSpiffeId('cluster.local', 'slow', 'slow'), authenticator: 'slow-test' } };
  },
};

beforeAll(async () => {
  ca = await startTestCa([], { deps: { extraAuthenticators: () => [slowAuthenticator] } });
  client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
  const dev = await loadDevIssuer(ca.keysDir, false);
  mint = (o = {}) =>
    dev.mint({
      namespace: o.ns ?? 'shop',
      serviceAccount: o.sa ?? 'web',
      audience: o.aud ?? 'meshca',
      ttlMs: o.ttlMs ?? 600_000,
      nowMs: o.nowMs ?? Date.now(),
      ...(o.pod ? { podName: o.pod } : {}),
    });
});

afterAll(async () => {
  client?.close();
  await ca?.stop();
});

async function expectRefusal(p: Promise<unknown>, code: number, message: RegExp): Promise<void> {
  const before = grantedCount();
  await expect(p).rejects.toMatchObject({ code, details: expect.stringMatching(message) });
  expect(grantedCount()).toBe(before);
}

describe('CreateCertificate', () => {
  it('issues a chain that openssl verifies, carrying exactly the token identity even when the CSR claims another', async () => {
    const token = await mint({ pod: 'web-1' });
    const { csrPem } = opensslCsr('ec-p256', { subject: '/CN=admin', san: 'URI:spiffe://cluster.local/ns/kube-system/sa/admin,DNS:evil.example' });
    const { certChain } = await client.createCertificate({ csr: csrPem, token, validityDuration: 3600 });
    expect(certChain).toHaveLength(3);
    const [leafPem, interPem, rootPem] = certChain as [string, string, string];
    expect(rootPem.trim()).toBe(ca.rootPem.trim());
    expect(opensslVerify(rootPem, interPem, leafPem)).toContain('OK');
    const leaf = new X509Certificate(leafPem);
    expect(leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/web');
    expect(leaf.subject || '').toBe('');
    const lifetime = Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
    expect(lifetime).toBeGreaterThanOrEqual(3600_000);
    expect(lifetime).toBeLessThanOrEqual(3660_000);
    const record = ledgerEvents().find((e) => e.type === 'issuance' && e.decision === 'granted' && e.serial === leaf.serialNumber.toLowerCase());
    expect(record).toMatchObject({ spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', podName: 'web-1', authenticator: 'dev-jwt', channel: 'CreateCertificate' });
  });

  it('uses the default 1h lifetime when validity_duration is 0', async () => {
    const { certChain } = await client.createCertificate({ csr: opensslCsr().csrPem, token: await mint() });
    const leaf = new X509Certificate(certChain[0]!);
    expect(Date.parse(leaf.validTo) - Date.now()).toBeGreaterThan(3500_000);
    expect(Date.parse(leaf.validTo) - Date.now()).toBeLessThanOrEqual(3600_000);
  });

  it('renews over mTLS with a certificate it issued, keeping that identity', async () => {
    const first = opensslCsr();
    const { certChain } = await client.createCertificate({ csr: first.csrPem, token: await mint({ ns: 'pay', sa: 'api' }) });
    const mtls = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost', clientCert: { certPem: certChain[0]! + certChain[1]!, keyPem: first.keyPem } });
    try {
      const renewed = await mtls.createCertificate({ csr: opensslCsr().csrPem });
      expect(new X509Certificate(renewed.certChain[0]!).subjectAltName).toBe('URI:spiffe://cluster.local/ns/pay/sa/api');
    } finally {
      mtls.close();
    }
  });

  it('refuses a client certificate from another CA', async () => {
    const other = await startTestCa();
    try {
      const dev = await loadDevIssuer(other.keysDir, false);
      const token = await dev.mint({ namespace: 'x', serviceAccount: 'y', audience: 'meshca', ttlMs: 60_000, nowMs: Date.now() });
      const c = opensslCsr();
      const otherClient = new CaClient({ address: other.server.grpcAddress, rootPem: other.rootPem, serverName: 'localhost' });
      const foreign = await otherClient.createCertificate({ csr: c.csrPem, token });
      otherClient.close();
      const mtls = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost', clientCert: { certPem: foreign.certChain[0]! + foreign.certChain[1]!, keyPem: c.keyPem } });
      // TLS verifies client certificates against this CA's roots, so a foreign one never authenticates.
      await expectRefusal(mtls.createCertificate({ csr: opensslCsr().csrPem }), status.UNAUTHENTICATED, /client certificate issued by this CA/);
      mtls.close();
    } finally {
      await other.stop();
    }
  });

  describe('refuses bad credentials with UNAUTHENTICATED and says which check failed', () => {
    const csr = () => opensslCsr().csrPem;
    it('no token', () => expectRefusal(client.createCertificate({ csr: csr() }), status.UNAUTHENTICATED, /no credentials/));
    it('expired token', async () =>
      expectRefusal(client.createCertificate({ csr: csr(), token: await mint({ nowMs: Date.now() - 3600_000, ttlMs: 600_000 }) }), status.UNAUTHENTICATED, /expired/));
    it('wrong audience', async () => expectRefusal(client.createCertificate({ csr: csr(), token: await mint({ aud: 'istio-ca' }) }), status.UNAUTHENTICATED, /audience/));
    it('untrusted issuer', async () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const token = await new SignJWT({ 'kubernetes.io': { namespace: 'a', serviceaccount: { name: 'b' } } })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer('https://evil.example')
        .setSubject('system:serviceaccount:a:b')
        .setAudience('meshca')
        .setExpirationTime('10m')
        .sign(privateKey);
      await expectRefusal(client.createCertificate({ csr: csr(), token }), status.UNAUTHENTICATED, /issuer "https:\/\/evil.example" is not trusted/);
    });
    it('unsigned (alg none)', async () => {
      const real = await mint();
      const payload = real.split('.')[1];
      const none = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${payload}.`;
      await expectRefusal(client.createCertificate({ csr: csr(), token: none }), status.UNAUTHENTICATED, /unsigned/);
    });
    it('tampered payload', async () => {
      const [h, p, s] = (await mint()).split('.') as [string, string, string];
      const claims = JSON.parse(new TextDecoder().decode(base64url.decode(p)));
      claims['kubernetes.io'].namespace = 'kube-system';
      claims.sub = `system:serviceaccount:kube-system:${claims['kubernetes.io'].serviceaccount.name}`;
      const forged = `${h}.${base64url.encode(JSON.stringify(claims))}.${s}`;
      await expectRefusal(client.createCertificate({ csr: csr(), token: forged }), status.UNAUTHENTICATED, /signature does not verify/);
    });
    it('token whose sub and kubernetes.io claims disagree', async () => {
      const dev = await loadDevIssuer(ca.keysDir, false);
      void dev;
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      void privateKey;
      // Only the issuer's key can sign such a token; build it with the dev issuer's key file.
      const { readPrivateKeyFile } = await import('../../src/pki/index.ts');
      const key = readPrivateKeyFile(`${ca.keysDir}/dev-token-key.pem`);
      const token = await new SignJWT({ 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'web' } } })
        .setProtectedHeader({ alg: 'ES256', kid: dev.jwks.keys[0]!.kid! })
        .setIssuer(dev.issuer)
        .setSubject('system:serviceaccount:kube-system:admin')
        .setAudience('meshca')
        .setExpirationTime('10m')
        .sign(key);
      await expectRefusal(client.createCertificate({ csr: csr(), token }), status.UNAUTHENTICATED, /disagrees/);
    });
  });

  describe('refuses bad requests with INVALID_ARGUMENT naming the problem, issuing nothing', () => {
    it('TTL above the maximum', async () =>
      expectRefusal(client.createCertificate({ csr: opensslCsr().csrPem, token: await mint(), validityDuration: 48 * 3600 }), status.INVALID_ARGUMENT, /requested TTL 48h exceeds the maximum 24h/));
    it('malformed CSR', async () =>
      expectRefusal(client.createCertificate({ csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', token: await mint() }), status.INVALID_ARGUMENT, /CSR/));
    it('empty CSR', async () => expectRefusal(client.createCertificate({ csr: '', token: await mint() }), status.INVALID_ARGUMENT, /csr \(field 1\) is empty/));
    it('RSA 1024 key', async () => expectRefusal(client.createCertificate({ csr: opensslCsr('rsa-1024').csrPem, token: await mint() }), status.INVALID_ARGUMENT, /RSA key of 1024 bits is not supported/));
    it('Ed25519 key', async () => expectRefusal(client.createCertificate({ csr: opensslCsr('ed25519').csrPem, token: await mint() }), status.INVALID_ARGUMENT, /Ed25519/));
    it('P-521 key', async () => expectRefusal(client.createCertificate({ csr: opensslCsr('ec-p521').csrPem, token: await mint() }), status.INVALID_ARGUMENT, /curve secp521r1 is not supported/));
    it('a request over 64 KiB is refused before parsing', async () =>
      expectRefusal(client.createCertificate({ csr: 'x'.repeat(70 * 1024), token: await mint() }), status.RESOURCE_EXHAUSTED, /./));
  });

  it('records denials in the ledger with the reason and never the token', async () => {
    // A caller that never authenticates is counted (per peer and reason per interval), not recorded alone.
    const { refusals } = ca.server.context as CaContext;
    await refusals.flush();
    const token = await mint({ aud: 'nope' });
    await client.createCertificate({ csr: opensslCsr().csrPem, token }).catch(() => undefined);
    await refusals.flush();
    const denial = ledgerEvents().filter((e) => e.type === 'refusals').at(-1);
    expect(denial).toMatchObject({ errorCode: 'UNAUTHENTICATED', count: 1, reason: expect.stringMatching(/audience/) });
    expect(JSON.stringify(ledgerEvents())).not.toContain(token);
  });

  it('answers /healthz, /readyz and /metrics', async () => {
    const base = `http://${ca.server.httpAddress}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/meshca_issuances_total\{outcome="OK"\} [1-9]/);
    expect(metrics).toMatch(/meshca_issuances_total\{outcome="UNAUTHENTICATED"\} [1-9]/);
    expect(metrics).toContain('meshca_issue_duration_seconds_bucket');
    expect(metrics).toMatch(/meshca_ca_cert_expiry_timestamp_seconds\{cert="intermediate"\} \d+/);
    expect(metrics).toMatch(/meshca_ca_cert_expiry_timestamp_seconds\{cert="root"\} \d+/);
    expect(metrics).toContain('process_cpu_user_seconds_total');
  });

  it('logs one line per request and never a token or a private key', async () => {
    const token = await mint({ ns: 'logs', sa: 'check' });
    await client.createCertificate({ csr: opensslCsr().csrPem, token });
    const raw = ca.rawLogs();
    expect(raw).not.toContain(token);
    expect(raw).not.toContain(token.split('.')[2]!);
    expect(raw).not.toMatch(/PRIVATE KEY/);
    const line = ca.logs.find((l) => l.spiffeId === 'spiffe://cluster.local/ns/logs/sa/check' && l.rpc === 'CreateCertificate');
    expect(line).toMatchObject({ outcome: 'OK', msg: 'issued', serial: expect.any(String), durationMs: expect.any(Number), peer: expect.stringContaining('127.0.0.1') });
  });
});

describe('the trust bundle in cert_chain', () => {
  it('is one last element holding every root, as istio-agent expects its ROOTCA', async () => {
    const own = await startTestCa();
    try {
      const { makeTestAuthority } = await import('../helpers/test_ca.ts');
      const { loadSigningAuthority } = await import('../../src/pki/index.ts');
      const other = await makeTestAuthority();
      const current = own.server.context.state.authority;
      own.server.context.state.update(
        loadSigningAuthority({ chainPem: current.chainPem.join(''), rootsPem: current.rootsPem.join('') + other.rootPem, signer: current.template.signer, nowMs: Date.now() }),
      );
      const c = new CaClient({ address: own.server.grpcAddress, rootPem: own.rootPem, serverName: 'localhost' });
      const dev = await loadDevIssuer(own.keysDir, false);
      const token = await dev.mint({ namespace: 'a', serviceAccount: 'b', audience: 'meshca', ttlMs: 60_000, nowMs: Date.now() });
      const { certChain } = await c.createCertificate({ csr: opensslCsr().csrPem, token });
      c.close();
      expect(certChain).toHaveLength(3);
      const bundle = certChain[2]!;
      expect(bundle.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
      expect(bundle).toContain(own.rootPem.trim());
      expect(bundle).toContain(other.rootPem.trim());
      expect(opensslVerify(bundle, certChain[1]!, certChain[0]!)).toContain('OK');
    } finally {
      await own.stop();
    }
  });
});

describe('graceful shutdown', () => {
  it('finishes a request in flight before closing', async () => {
    const own = await startTestCa([], { deps: { extraAuthenticators: () => [slowAuthenticator] } });
    const c = new CaClient({ address: own.server.grpcAddress, rootPem: own.rootPem, serverName: 'localhost' });
    const inFlight = c.createCertificate({ csr: opensslCsr().csrPem, token: 'slow-token' });
    await new Promise((r) => setTimeout(r, 200));
    const closed = own.stop();
    const { certChain } = await inFlight;
    expect(new X509Certificate(certChain[0]!).subjectAltName).toBe('URI:spiffe://cluster.local/ns/slow/sa/slow');
    await closed;
    await expect(c.createCertificate({ csr: opensslCsr().csrPem, token: 'slow-token', deadlineMs: 1000 })).rejects.toMatchObject({ code: status.UNAVAILABLE });
    c.close();
  });
});
