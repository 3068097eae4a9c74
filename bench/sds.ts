// SDS fan-out: ≥ 10,000 Envoy-like streams held on one agent-side SDS server (Unix socket), the
// time for one rotation of `default` to reach all of them, and server memory per stream. The
// clients run in a child process so their memory and CPU are not counted against the server.

import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../src/observability/index.ts';
import { createIntermediateCa, createLocalSigner, createRootCa, generateKeyPair, issueSvid, loadSigningAuthority, toPem, keyAlgorithmOf } from '../src/pki/index.ts';
import { addSdsService, SecretStore, tlsCertificateSecret, type SdsSecret } from '../src/sds/index.ts';
import { fmt, writeSection } from './report.ts';

const STREAMS = Number(process.env.BENCH_SDS_STREAMS ?? 10_000);
const CONNECTIONS = Number(process.env.BENCH_SDS_CONNECTIONS ?? 100);
const ROTATIONS = 3;
const TARGET_MS = 2000;
const TARGET_BYTES_PER_STREAM = 20 * 1024;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function settledMemory(): { heap: number; rss: number; reserved: number } {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  // arrayBuffers is already part of external.
  return { heap: m.heapUsed + m.external, rss: m.rss, reserved: m.heapTotal + m.external };
}

async function makeSecretFactory(): Promise<() => Promise<SdsSecret>> {
  const now = Date.now();
  const base = { trustDomain: 'cluster.local', organization: 'bench', keyType: 'ec-p256' as const, nowMs: now };
  const root = await createRootCa({ ...base, ttlMs: 3650 * 86400e3 });
  const inter = await createIntermediateCa({ ...base, ttlMs: 365 * 86400e3, rootCertificateDer: root.certificateDer, rootSigner: createLocalSigner(root.privateKey), rootNotAfterMs: now + 3650 * 86400e3 });
  const authority = loadSigningAuthority({ chainPem: toPem(inter.certificateDer, 'CERTIFICATE'), rootsPem: toPem(root.certificateDer, 'CERTIFICATE'), signer: createLocalSigner(inter.privateKey), nowMs: now });
  return async () => {
    const { privateKey, publicKey } = generateKeyPair();
    const cert = await issueSvid(authority, 'spiffe://cluster.local/ns/bench/sa/bench', {
      spkiDer: publicKey.export({ format: 'der', type: 'spki' }),
      keyAlgorithm: keyAlgorithmOf(publicKey),
      ttlMs: 3600e3,
      nowMs: Date.now(),
    });
    return tlsCertificateSecret('default', cert.pem + authority.chainPem.join(''), privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, cert.notAfterMs);
  };
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-bench-sds-'));
  const socket = join(dir, 'sds.sock');
  const makeSecret = await makeSecretFactory();
  const store = new SecretStore();
  store.set(await makeSecret());
  const server = new grpc.Server();
  addSdsService(server, { source: store, log: createLogger('warn') });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  const before = settledMemory();

  const perConnection = Math.ceil(STREAMS / CONNECTIONS);
  const streams = perConnection * CONNECTIONS;
  const child = fork(new URL('./sds_clients.ts', import.meta.url), [socket, String(CONNECTIONS), String(perConnection)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiters = new Map<string, (atMs: number) => void>();
  child.on('message', (m: { type: string; version?: string; message?: string }) => {
    if (m.type === 'all') waiters.get(m.version!)?.(performance.now());
    if (m.type === 'error') process.stderr.write(`bench client error: ${m.message}\n`);
  });
  const allHold = (version: string, timeoutMs = 120_000) =>
    new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not every stream got version ${version} within ${timeoutMs} ms`)), timeoutMs);
      waiters.set(version, (at) => (clearTimeout(timer), resolve(at)));
    });

  const openStart = performance.now();
  const opened = await allHold(store.get('default')!.version);
  const openMs = opened - openStart;
  await new Promise((r) => setTimeout(r, 500)); // let ACKs settle
  const held = settledMemory();

  const rotationMs: number[] = [];
  for (let i = 1; i <= ROTATIONS; i++) {
    const secret = await makeSecret();
    const done = allHold(secret.version);
    const start = performance.now();
    store.set(secret);
    rotationMs.push((await done) - start);
    await new Promise((r) => setTimeout(r, 300));
  }
  child.send({ type: 'exit' });
  server.forceShutdown();
  rmSync(dir, { recursive: true, force: true });

  const heapPerStream = (held.heap - before.heap) / streams;
  const rssPerStream = (held.rss - before.rss) / streams;
  const reservedPerStream = (held.reserved - before.reserved) / streams;
  const worst = Math.max(...rotationMs);
  writeSection(
    'sds',
    [
      '## SDS fan-out (agent-side store, one process)',
      '',
      `${fmt(streams)} StreamSecrets streams over ${fmt(CONNECTIONS)} connections on one Unix socket, each subscribed to \`default\` and ACKing like Envoy; ` +
        'clients in a child process. A rotation is one new `default` secret (new key and certificate) set in the store; the time is until every stream has received it.',
      '',
      '| measure | value | target |',
      '| --- | ---: | ---: |',
      `| streams open and served their first secret | ${fmt(openMs)} ms | |`,
      `| rotation reaches all streams (worst of ${ROTATIONS}) | ${fmt(worst)} ms | ≤ ${fmt(TARGET_MS)} ms |`,
      `| rotation reaches all streams (each) | ${rotationMs.map((m) => fmt(m)).join(' / ')} ms | |`,
      `| server memory per stream (heap + external) | ${fmt(heapPerStream / 1024, 1)} KB | ≤ ${TARGET_BYTES_PER_STREAM / 1024} KB |`,
      `| V8 heap reserved per stream (heapTotal + external) | ${fmt(reservedPerStream / 1024, 1)} KB | |`,
      `| process RSS growth per stream | ${fmt(rssPerStream / 1024, 1)} KB | |`,
      '',
      `Encoded once per rotation and shared: each stream writes the same response bytes. ${worst <= TARGET_MS && heapPerStream <= TARGET_BYTES_PER_STREAM ? 'Both targets met' : 'A target was missed; see above'} for live memory (what the streams hold after a full GC). ` +
        `The process's RSS grows more than that, almost all of it V8 heap reserved while the streams were set up and not handed back to the OS; it is reused, not leaked, but a memory limit must allow for it.`,
    ].join('\n'),
  );
}
