// The mesh harness explains every failed handshake: which side refused and OpenSSL's reason (node's
// own rejectUnauthorized would close with neither), counted once, with what each side held.

import { describe, expect, it } from 'vitest';
import { createIntermediateCa, createLocalSigner, createRootCa, generateKeyPair, issueSvid, keyAlgorithmOf, loadSigningAuthority, toPem } from '../../src/pki/index.ts';
import { makeSecrets, startHandshakes, type SecretsHolder } from './mesh.ts';

const HOUR_MS = 3_600_000;

async function makeCa(): Promise<{ rootPem: string; issue: (spiffeId: string, at?: { nowMs: number; ttlMs: number }) => Promise<{ chainPem: string; privateKeyPem: string }> }> {
  const nowMs = Date.now();
  const base = { trustDomain: 'cluster.local', organization: 'mesh test', keyType: 'ec-p256' as const };
  const root = await createRootCa({ ...base, nowMs: nowMs - HOUR_MS, ttlMs: 24 * HOUR_MS });
  const inter = await createIntermediateCa({ ...base, nowMs: nowMs - HOUR_MS, ttlMs: 2 * HOUR_MS, rootCertificateDer: root.certificateDer, rootSigner: createLocalSigner(root.privateKey), rootNotAfterMs: nowMs + 23 * HOUR_MS });
  const rootPem = toPem(root.certificateDer, 'CERTIFICATE');
  const interPem = toPem(inter.certificateDer, 'CERTIFICATE');
  const authority = loadSigningAuthority({ chainPem: interPem, rootsPem: rootPem, signer: createLocalSigner(inter.privateKey), nowMs });
  return {
    rootPem,
    issue: async (spiffeId, at = { nowMs, ttlMs: HOUR_MS }) => {
      const { privateKey, publicKey } = generateKeyPair('ec-p256');
      const leaf = await issueSvid(authority, spiffeId, { spkiDer: publicKey.export({ format: 'der', type: 'spki' }), keyAlgorithm: keyAlgorithmOf(publicKey), ...at });
      return { chainPem: leaf.pem + interPem, privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string };
    },
  };
}

const SERVER = 'spiffe://cluster.local/ns/mesh/sa/server';
const CLIENT = 'spiffe://cluster.local/ns/mesh/sa/client';

function holder(spiffeId: string, leaf: { chainPem: string; privateKeyPem: string }, bundlePem: string): SecretsHolder {
  return { spiffeId, secrets: makeSecrets(leaf.chainPem, leaf.privateKeyPem, bundlePem, Date.now()) };
}

async function runPair(server: SecretsHolder, client: SecretsHolder, ms = 300) {
  const mesh = await startHandshakes([server, client], 1);
  mesh.setPhase('test phase');
  await new Promise((r) => setTimeout(r, ms));
  await mesh.stop();
  return mesh.stats;
}

describe('mesh handshake pairs', () => {
  it('count full handshakes between peers that trust each other, with no failure', async () => {
    const ca = await makeCa();
    const stats = await runPair(holder(SERVER, await ca.issue(SERVER), ca.rootPem), holder(CLIENT, await ca.issue(CLIENT), ca.rootPem));
    expect(stats.failures).toEqual([]);
    expect(stats.ok).toBeGreaterThan(5);
  });

  it('name the server as the refuser, with OpenSSL’s reason, when the server does not trust the client’s root', async () => {
    const [a, b] = [await makeCa(), await makeCa()];
    // The client trusts both roots; the server only its own, as a bundle missing the new root would.
    const stats = await runPair(holder(SERVER, await a.issue(SERVER), a.rootPem), holder(CLIENT, await b.issue(CLIENT), a.rootPem + b.rootPem));
    expect(stats.ok).toBe(0);
    expect(stats.failed).toBeGreaterThan(0);
    expect(stats.details).toHaveLength(Math.min(stats.failed, 50));
    expect(stats.details[0]).toMatchObject({ refusedBy: 'server', phase: 'test phase', reason: expect.stringMatching(/^client certificate not accepted: UNABLE_TO_(GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE)/) });
    expect(stats.details[0]!.client).toMatch(/to a root not in its own bundle|to root [0-9a-f]{8}/);
  });

  it('name the client as the refuser when the client does not trust the server’s root', async () => {
    const [a, b] = [await makeCa(), await makeCa()];
    const stats = await runPair(holder(SERVER, await a.issue(SERVER), a.rootPem + b.rootPem), holder(CLIENT, await b.issue(CLIENT), b.rootPem));
    expect(stats.ok).toBe(0);
    expect(stats.details[0]).toMatchObject({ refusedBy: 'client', reason: expect.stringMatching(/UNABLE_TO_(GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE)/) });
  });

  it('report an expired client certificate as the server’s refusal with CERT_HAS_EXPIRED and the time it had left', async () => {
    const ca = await makeCa();
    const expired = await ca.issue(CLIENT, { nowMs: Date.now() - 10 * 60_000, ttlMs: 60_000 });
    const stats = await runPair(holder(SERVER, await ca.issue(SERVER), ca.rootPem), holder(CLIENT, expired, ca.rootPem));
    expect(stats.details[0]).toMatchObject({ refusedBy: 'server', reason: 'client certificate not accepted: CERT_HAS_EXPIRED' });
    expect(stats.details[0]!.client).toMatch(/\(-\d+\.\d s left\)/);
  });

  it('refuse a peer with the wrong SPIFFE ID even when its chain is trusted', async () => {
    const ca = await makeCa();
    const stats = await runPair(holder(SERVER, await ca.issue(SERVER), ca.rootPem), holder(CLIENT, await ca.issue('spiffe://cluster.local/ns/mesh/sa/someone-else'), ca.rootPem));
    expect(stats.ok).toBe(0);
    expect(stats.details[0]).toMatchObject({ refusedBy: 'server', reason: `server saw spiffe://cluster.local/ns/mesh/sa/someone-else instead of ${CLIENT}` });
  });
});
