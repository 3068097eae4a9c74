// Two SVIDs from the same CA make a mutual-TLS handshake with node:tls; a leaf from another root
// is refused.

import { createServer, connect, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { issueSvid, parseCsrPem } from '../../src/pki/index.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { makeTestAuthority, type TestAuthority } from '../helpers/test_ca.ts';

async function svid(ca: TestAuthority, id: string) {
  const { csrPem, keyPem } = opensslCsr();
  const csr = parseCsrPem(csrPem);
  const cert = await issueSvid(ca.authority, id, { spkiDer: csr.spkiDer, keyAlgorithm: csr.keyAlgorithm, ttlMs: 3600_000, nowMs: Date.now() });
  return { cert: cert.pem + ca.intermediatePem, key: keyPem };
}

/** Server trusts `trustRootPem`; resolves with what each side saw. */
async function handshake(server: { cert: string; key: string }, client: { cert: string; key: string }, trustRootPem: string, clientRootPem = trustRootPem) {
  const srv = createServer({ ...server, ca: trustRootPem, requestCert: true, rejectUnauthorized: true });
  const peerIds: string[] = [];
  srv.on('secureConnection', (s: TLSSocket) => {
    peerIds.push(s.getPeerX509Certificate()?.subjectAltName ?? '');
    s.end('ok');
  });
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  try {
    return await new Promise<{ serverId: string; clientSaw: string[] }>((resolve, reject) => {
      const sock = connect({
        port,
        host: '127.0.0.1',
        ...client,
        ca: clientRootPem,
        // SPIFFE peers are checked by ID, not by host name.
        checkServerIdentity: () => undefined,
      });
      sock.once('error', reject);
      sock.once('close', () => reject(new Error('connection closed before the server answered')));
      sock.on('data', () => {
        resolve({ serverId: sock.getPeerX509Certificate()?.subjectAltName ?? '', clientSaw: peerIds });
        sock.end();
      });
    });
  } finally {
    srv.close();
  }
}

describe('mutual TLS with SVIDs', () => {
  it('two leaves of one CA authenticate each other by SPIFFE ID', async () => {
    const ca = await makeTestAuthority();
    const a = await svid(ca, 'spiffe://cluster.local/ns/a/sa/server');
    const b = await svid(ca, 'spiffe://cluster.local/ns/b/sa/client');
    const result = await handshake(a, b, ca.rootPem);
    expect(result.serverId).toBe('URI:spiffe://cluster.local/ns/a/sa/server');
    expect(result.clientSaw).toEqual(['URI:spiffe://cluster.local/ns/b/sa/client']);
  });

  it('refuses a client whose leaf comes from another root', async () => {
    const ca = await makeTestAuthority();
    const other = await makeTestAuthority();
    const a = await svid(ca, 'spiffe://cluster.local/ns/a/sa/server');
    const intruder = await svid(other, 'spiffe://cluster.local/ns/a/sa/server');
    await expect(handshake(a, intruder, ca.rootPem)).rejects.toThrow();
  });

  it('refuses a server whose leaf comes from another root', async () => {
    const ca = await makeTestAuthority();
    const other = await makeTestAuthority();
    const impostor = await svid(other, 'spiffe://cluster.local/ns/a/sa/server');
    const b = await svid(ca, 'spiffe://cluster.local/ns/b/sa/client');
    await expect(handshake(impostor, b, other.rootPem, ca.rootPem)).rejects.toThrow();
  });
});
