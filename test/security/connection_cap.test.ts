// The total connection cap (--max-connections): once that many connections are open, from any
// addresses, a new one is closed on accept; when they go, the CA serves again. In-process, loopback.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { closedByServer, openIdle } from '../helpers/net.ts';
import { startTestCa, type TestCa } from '../helpers/serve.ts';
import { mintToken } from './cli.ts';

let ca: TestCa;
let port: number;

beforeAll(async () => {
  ca = await startTestCa(['--max-connections', '4', '--tls-handshake-timeout', '60s']);
  port = Number(ca.server.grpcAddress.split(':').pop());
});
afterAll(async () => {
  await ca.stop();
});

describe('--max-connections', () => {
  it('closes a connection from any address once the total is reached, and serves again when they go', async () => {
    const held = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'].map((a) => openIdle(port, a)));
    const extra = await openIdle(port, '127.0.0.6');
    await closedByServer(extra);
    const metrics = await (await fetch(`http://${ca.server.httpAddress}/metrics`)).text();
    expect(metrics).toMatch(/meshca_connections_refused_total\{reason="total"\} [1-9]/);
    await Promise.all(held.map((s) => new Promise<void>((resolve) => s.end(resolve))));
    const client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
    try {
      // The server notices the closes asynchronously: the first attempt may still meet the cap.
      let served = false;
      for (let attempt = 0; attempt < 20 && !served; attempt++) {
        served = await client.createCertificate({ csr: opensslCsr().csrPem, token: await mintToken(ca.keysDir, 'shop', 'web'), deadlineMs: 2000 }).then(() => true, () => false);
      }
      expect(served).toBe(true);
    } finally {
      client.close();
    }
  });
});
