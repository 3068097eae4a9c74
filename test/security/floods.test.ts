// Issue 12, Medium 8: connection and stream exhaustion, against `meshca serve` as a process (its
// memory measured from /proc). Loopback only and bounded: idle TCP connections that never start
// TLS, and HTTP/2 sessions full of stalled streams with partial 50 KB bodies, each flood from its
// own loopback address; a good client on 127.0.0.1 is still served throughout.

import { readFileSync, writeFileSync } from 'node:fs';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { runMeshca, startServeProcess, tempDir, type ServeProcess } from '../helpers/serve.ts';

const PER_PEER = 16;
const STREAMS = 20;
/** What the limits allow the stalled-stream flood to hold on the server: 16 × 20 × 50 KB = 16 MB. */
const HELD_BYTES = PER_PEER * STREAMS * 50 * 1024;
/** The stated bound on the server's RSS growth under the flood: what the caps let it hold, plus 32 MB (the unbounded flood would hold 500 MB). */
const RSS_GROWTH_BOUND_BYTES = HELD_BYTES + 32 * 1024 * 1024;

let work: { path: string; cleanup: () => void };
let serve: ServeProcess;
let keys: string;
let port: number;
let good: CaClient;
let token: string;

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

async function goodClientIsServed(): Promise<void> {
  const r = await good.createCertificate({ csr: opensslCsr('ec-p256').csrPem, token, deadlineMs: 10_000 });
  expect(r.certChain.length).toBeGreaterThanOrEqual(3);
  expect((await fetch(`http://${serve.httpAddress}/healthz`)).status).toBe(200);
}

beforeAll(async () => {
  work = tempDir();
  keys = join(work.path, 'keys');
  serve = await startServeProcess([
    '--keys', keys, '--db', `sqlite:${join(work.path, 'ledger.db')}`, 
    '--max-connections', '1000', '--max-connections-per-peer', String(PER_PEER),
    '--max-streams-per-connection', String(STREAMS), '--tls-handshake-timeout', '1s',
  ]);
  port = Number(serve.grpcAddress.split(':').pop());
  const mint = await runMeshca(['token', 'mint', '--keys', keys, '--ns', 'shop', '--sa', 'web']);
  token = mint.stdout.trim();
  writeFileSync(join(work.path, 'token'), token);
  good = new CaClient({ address: `127.0.0.1:${port}`, rootPem: readFileSync(join(keys, 'root-cert.pem'), 'utf8'), serverName: 'localhost' });
  await goodClientIsServed();
}, 60_000);

afterAll(async () => {
  good?.close();
  serve?.child.kill('SIGTERM');
  await serve?.exited;
  work?.cleanup();
});

describe('connection and stream floods', () => {
  it('closes idle connections beyond the per-peer cap at once and the rest at the handshake timeout; a good client is served', async () => {
    const sockets: Socket[] = [];
    const closed = new Set<Socket>();
    const allClosed = new Promise<void>((resolve) => {
      for (let i = 0; i < 300; i++) {
        const s = netConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
        s.on('error', () => undefined);
        s.on('close', () => {
          closed.add(s);
          if (closed.size === 300) resolve();
        });
        sockets.push(s);
      }
    });
    // While up to 16 of them wait for their handshake, everyone else is still served.
    await goodClientIsServed();
    await allClosed;
    expect(closed.size).toBe(300);
    await goodClientIsServed();
    const metrics = await (await fetch(`http://${serve.httpAddress}/metrics`)).text();
    expect(Number(/meshca_connections_refused_total\{reason="per-peer"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(300 - PER_PEER);
  }, 30_000);

  it(`holds stalled streams within the caps: 50 sessions × 200 streams of 50 KB partial bodies stay within the caps and grow RSS by less than ${RSS_GROWTH_BOUND_BYTES >> 20} MB`, async () => {
    const before = rssBytes(serve.child.pid!);
    const sessions: ClientHttp2Session[] = [];
    const partial = Buffer.alloc(5 + 50 * 1024);
    partial.writeUInt32BE(60_000, 1); // gRPC frame: uncompressed, 60,000 bytes announced, 51,200 sent
    let written = 0;
    const settled = Promise.all(
      Array.from({ length: 50 }, () =>
        new Promise<void>((resolve) => {
          const session = http2Connect(`https://127.0.0.1:${port}`, {
            createConnection: () => tlsConnect({ socket: netConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' }), ALPNProtocols: ['h2'], servername: 'localhost', rejectUnauthorized: false }),
          });
          sessions.push(session);
          session.on('error', () => resolve());
          session.on('close', () => resolve());
          session.on('connect', () => {
            for (let i = 0; i < 200; i++) {
              const stream = session.request({ ':method': 'POST', ':path': '/istio.v1.auth.IstioCertificateService/CreateCertificate', 'content-type': 'application/grpc', te: 'trailers' });
              stream.on('error', () => undefined);
              stream.write(partial, () => void written++);
            }
            // Resolve once this session's streams were accepted (or refused) by the server.
            setTimeout(resolve, 2000).unref();
          });
        }),
      ),
    );
    await settled;
    await goodClientIsServed();
    const growth = rssBytes(serve.child.pid!) - before;
    // What the server took: at most PER_PEER sessions stay open, each told (SETTINGS) to open at most
    // STREAMS streams; nghttp2 refuses any stream beyond that (REFUSED_STREAM).
    const live = sessions.filter((x) => !x.closed && !x.destroyed);
    const advertised = new Set(live.map((x) => x.remoteSettings.maxConcurrentStreams));
    for (const x of sessions) x.destroy();
    expect(live.length).toBeGreaterThan(0);
    expect(live.length).toBeLessThanOrEqual(PER_PEER);
    expect([...advertised]).toEqual([STREAMS]);
    expect(written).toBeGreaterThan(0);
    console.log(`stalled-stream flood: server RSS grew ${(growth / 2 ** 20).toFixed(1)} MB`);
    expect(growth).toBeLessThan(RSS_GROWTH_BOUND_BYTES);
    expect(HELD_BYTES).toBeLessThan(RSS_GROWTH_BOUND_BYTES);
  }, 60_000);
});
