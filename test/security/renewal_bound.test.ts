// Issue 12, Medium 10: renewal over mTLS used to never end (a 10 s leaf from a 15 s token renewed
// itself into 24 h leaves, and went on after the token expired). Now a renewal cannot extend an
// identity past --max-renewal-age after the token grant its chain descends from; the ledger records
// that grant time and the certificate each renewal renewed. Real server, real TLS, fake clock.

import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDevIssuer } from '../../src/authn/index.ts';
import { FakeClock } from '../fakes/clock.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';

let ca: TestCa | undefined;
let work: { path: string; cleanup: () => void } | undefined;
afterEach(async () => {
  await ca?.stop();
  work?.cleanup();
  ca = undefined;
});

interface Held {
  readonly chain: string[];
  readonly keyPem: string;
  readonly leaf: X509Certificate;
}

async function start(clock: FakeClock, maxRenewalAge: string): Promise<TestCa> {
  work = tempDir();
  // Started at the real time, so TLS (which checks validity on the real clock) accepts every leaf.
  return startTestCa(['--max-renewal-age', maxRenewalAge, '--db', `sqlite:${join(work.path, 'ledger.db')}`], { clock });
}

async function withToken(c: TestCa, clock: FakeClock, ttlSeconds: number): Promise<Held> {
  const dev = await loadDevIssuer(c.keysDir, false);
  const token = await dev.mint({ namespace: 'shop', serviceAccount: 'web', audience: 'meshca', ttlMs: 15_000, nowMs: clock.now() });
  const client = new CaClient({ address: c.server.grpcAddress, rootPem: c.rootPem, serverName: 'localhost' });
  try {
    const csr = opensslCsr('ec-p256');
    const r = await client.createCertificate({ csr: csr.csrPem, token, validityDuration: ttlSeconds });
    return { chain: r.certChain, keyPem: csr.keyPem, leaf: new X509Certificate(r.certChain[0]!) };
  } finally {
    client.close();
  }
}

async function renew(c: TestCa, held: Held, ttlSeconds: number): Promise<Held> {
  const client = new CaClient({
    address: c.server.grpcAddress,
    rootPem: c.rootPem,
    serverName: 'localhost',
    clientCert: { certPem: held.chain[0]! + held.chain[1]!, keyPem: held.keyPem },
  });
  try {
    const csr = opensslCsr('ec-p256');
    const r = await client.createCertificate({ csr: csr.csrPem, validityDuration: ttlSeconds });
    return { chain: r.certChain, keyPem: csr.keyPem, leaf: new X509Certificate(r.certChain[0]!) };
  } finally {
    client.close();
  }
}

async function recordOf(c: TestCa, leaf: X509Certificate) {
  const [record] = await c.server.context.fullLedger!.query({ serial: leaf.serialNumber, type: 'issuance', limit: 1 });
  return record!.event as { authenticator?: string; detail?: Record<string, string> };
}

const secondsOf = (ms: number) => Math.floor(ms / 1000) * 1000;

describe('renewal over mTLS is bounded by --max-renewal-age', () => {
  it('carries the token grant time through the chain, caps each renewal at grant + bound, then demands a fresh token', async () => {
    const clock = new FakeClock(Date.now());
    ca = await start(clock, '40s');
    const grantedAtMs = clock.now();
    const first = await withToken(ca, clock, 30);
    expect((await recordOf(ca, first.leaf)).detail?.grantedAt).toBe(new Date(grantedAtMs).toISOString());

    await clock.advance(20_000);
    // Asks for an hour; gets what is left of the 40 s bound.
    const second = await renew(ca, first, 3600);
    expect(Date.parse(second.leaf.validTo)).toBe(secondsOf(grantedAtMs + 40_000));
    const record = await recordOf(ca, second.leaf);
    expect(record).toMatchObject({ authenticator: 'mtls', detail: { grantedAt: new Date(grantedAtMs).toISOString(), renewalOf: first.leaf.serialNumber.toLowerCase() } });

    await clock.advance(12_000);
    // 8 s of the bound left, less than the shortest lifetime: the workload must show a token again.
    await expect(renew(ca, second, 30)).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
      details: expect.stringMatching(/^renewal over mTLS refused: this identity was last granted on a token at .*--max-renewal-age 40s after that; present a fresh token$/),
    });
    // A fresh token starts a new chain.
    const fresh = await withToken(ca, clock, 30);
    expect((await recordOf(ca, fresh.leaf)).detail?.grantedAt).toBe(new Date(clock.now()).toISOString());
  });

  it('refuses a renewal past the bound although the presented leaf is still valid', async () => {
    const clock = new FakeClock(Date.now());
    ca = await start(clock, '20s');
    const leaf = await withToken(ca, clock, 60);
    await clock.advance(25_000);
    expect(Date.parse(leaf.leaf.validTo)).toBeGreaterThan(clock.now());
    await expect(renew(ca, leaf, 30)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringMatching(/present a fresh token/) });
    const denied = await ca.server.context.fullLedger!.query({ deniedOnly: true, limit: 1 });
    expect(denied[0]?.event).toMatchObject({ decision: 'denied', errorCode: 'UNAUTHENTICATED', authenticator: 'mtls' });
  });
});
