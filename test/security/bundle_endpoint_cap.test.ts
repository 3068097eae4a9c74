// The SPIFFE bundle endpoint (--bundle-endpoint) sits behind the gRPC port's connection gate: an idle
// TCP flood from one address is cut at --max-connections-per-peer, a good client elsewhere still gets
// the bundle, and a request with a body or oversized headers is refused. In-process, loopback.

import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBundle, parseBundleDocument, parseFederationPeer } from '../../src/federation/index.ts';
import { closedByServer, freePort, openIdle } from '../helpers/net.ts';
import { startTestCa, type TestCa } from '../helpers/serve.ts';

const PER_PEER = 4;
const FLOOD = 20;

let ca: TestCa;
let port: number;

beforeAll(async () => {
  port = await freePort();
  ca = await startTestCa(['--bundle-endpoint', `127.0.0.1:${port}`, '--max-connections-per-peer', String(PER_PEER), '--tls-handshake-timeout', '60s']);
});
afterAll(async () => {
  await ca.stop();
});

/** Status of one HTTPS request to the endpoint (the certificate is not the point here). */
function statusOf(opts: { method: string; headers?: Record<string, string>; body?: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/bundle', method: opts.method, headers: opts.headers, rejectUnauthorized: false, agent: false, localAddress: '127.0.0.9' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
    req.end(opts.body);
  });
}

describe('--bundle-endpoint behind the connection limits', () => {
  it('closes an idle flood past --max-connections-per-peer, and a good client still gets the bundle', async () => {
    const flood = await Promise.all(Array.from({ length: FLOOD }, () => openIdle(port, '127.0.0.2')));
    try {
      await Promise.all(flood.slice(PER_PEER).map(closedByServer));
      expect(flood.slice(0, PER_PEER).every((s) => !s.destroyed)).toBe(true);
      const metrics = await (await fetch(`http://${ca.server.httpAddress}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`meshca_connections_refused_total\\{reason="per-peer"\\} ${FLOOD - PER_PEER}`));
      const doc = parseBundleDocument(await fetchBundle(parseFederationPeer(`cluster.local=https://127.0.0.1:${port}/bundle`), [ca.rootPem]), 'cluster.local', 0);
      expect(doc.rootsPem.join('')).toContain(ca.rootPem.trim());
    } finally {
      for (const s of flood) s.destroy();
    }
  });

  it('refuses a request with a body or with headers past 8 KiB', async () => {
    expect(await statusOf({ method: 'GET', headers: { 'content-length': '5' }, body: 'hello' })).toBe(413);
    expect(await statusOf({ method: 'POST', body: 'x' })).toBe(405);
    expect(await statusOf({ method: 'GET', headers: { 'x-pad': 'a'.repeat(16 * 1024) } })).toBe(431);
    expect(await statusOf({ method: 'GET' })).toBe(200);
  });
});
