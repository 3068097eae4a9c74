// SDS fan-out: ≥ 10,000 Envoy-like streams held on one agent-side SDS server (Unix socket), the
// time for one rotation of `default` to reach all of them, and server memory per stream. The
// server runs in a child process on the JavaScript build, as the agent does, once with Node's
// defaults and once with the NODE_OPTIONS the injector gives the agent; the clients run in
// another child, so neither their memory nor the bench's own is counted against the server.

import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_NODE_OPTIONS } from '../src/inject/index.ts';
import { createIntermediateCa, createLocalSigner, createRootCa, generateKeyPair, issueSvid, loadSigningAuthority, toPem, keyAlgorithmOf } from '../src/pki/index.ts';
import { tlsCertificateSecret, type SdsSecret } from '../src/sds/index.ts';
import { fmt, writeSection } from './report.ts';

const STREAMS = Number(process.env.BENCH_SDS_STREAMS ?? 10_000);
const CONNECTIONS = Number(process.env.BENCH_SDS_CONNECTIONS ?? 100);
const ROTATIONS = 3;
const TARGET_MS = 2000;
const TARGET_BYTES_PER_STREAM = 20 * 1024;

interface Memory {
  /** heapUsed + external after full GCs: what the streams hold. */
  heap: number;
  /** heapTotal + external: what V8 has reserved. */
  reserved: number;
  rss: number;
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

/** Sends `m` to `child` and resolves with its first reply of type `reply`. */
function ask<T>(child: ChildProcess, m: object, reply: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (r: { type: string } & T) => {
      if (r.type !== reply) return;
      child.off('message', on);
      resolve(r);
    };
    child.on('message', on);
    child.send(m);
  });
}

interface FanOut {
  openMs: number;
  rotationMs: number[];
  /** The server's CPU per rotation (ACKs included), which the machine's other load does not skew. */
  rotationCpuMs: number;
  streams: number;
  heapPerStream: number;
  reservedPerStream: number;
  rssPerStream: number;
}

async function fanOut(makeSecret: () => Promise<SdsSecret>, nodeOptions: string[]): Promise<FanOut> {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-bench-sds-'));
  const socket = join(dir, 'sds.sock');
  const server = fork(new URL('./sds_server_child.js', import.meta.url), [socket], { execArgv: ['--expose-gc', ...nodeOptions], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const serverExited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  let clients: ChildProcess | undefined;
  try {
    await new Promise<void>((resolve) => server.once('message', () => resolve()));
    const serve = (secret: SdsSecret) => {
      if (secret.kind !== 'tls-certificate') throw new Error('a tls-certificate secret');
      return ask(server, { type: 'secret', chainPem: secret.chainPem, privateKeyPem: secret.privateKeyPem, notAfterMs: secret.notAfterMs }, 'set');
    };
    const memory = async () => (await ask<{ memory: Memory }>(server, { type: 'memory' }, 'memory')).memory;
    const first = await makeSecret();
    await serve(first);
    const before = await memory();

    const perConnection = Math.ceil(STREAMS / CONNECTIONS);
    const streams = perConnection * CONNECTIONS;
    clients = fork(new URL('./sds_clients.ts', import.meta.url), [socket, String(CONNECTIONS), String(perConnection)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const waiters = new Map<string, (atMs: number) => void>();
    clients.on('message', (m: { type: string; version?: string; message?: string }) => {
      if (m.type === 'all') waiters.get(m.version!)?.(performance.now());
      if (m.type === 'error') process.stderr.write(`bench client error: ${m.message}\n`);
    });
    const allHold = (version: string, timeoutMs = 120_000) =>
      new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not every stream got version ${version} within ${timeoutMs} ms`)), timeoutMs);
        waiters.set(version, (at) => (clearTimeout(timer), resolve(at)));
      });

    const openStart = performance.now();
    const openMs = (await allHold(first.version)) - openStart;
    await new Promise((r) => setTimeout(r, 500)); // let ACKs settle
    const held = await memory();

    const cpuMs = async () => (await ask<{ cpuMs: number }>(server, { type: 'cpu' }, 'cpu')).cpuMs;
    const cpu0 = await cpuMs();
    const rotationMs: number[] = [];
    for (let i = 1; i <= ROTATIONS; i++) {
      const secret = await makeSecret();
      const done = allHold(secret.version);
      const start = performance.now();
      await serve(secret);
      rotationMs.push((await done) - start);
      await new Promise((r) => setTimeout(r, 300));
    }
    const rotationCpuMs = ((await cpuMs()) - cpu0) / ROTATIONS;
    return {
      openMs,
      rotationMs,
      rotationCpuMs,
      streams,
      heapPerStream: (held.heap - before.heap) / streams,
      reservedPerStream: (held.reserved - before.reserved) / streams,
      rssPerStream: (held.rss - before.rss) / streams,
    };
  } finally {
    clients?.send({ type: 'exit' });
    server.send({ type: 'exit' });
    await serverExited;
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  const makeSecret = await makeSecretFactory();
  const runs: [string, FanOut][] = [];
  for (const [name, options] of [
    ['Node defaults', []],
    ['`--max-semi-space-size=1`', ['--max-semi-space-size=1']],
    [`as injected (\`NODE_OPTIONS=${AGENT_NODE_OPTIONS}\`)`, AGENT_NODE_OPTIONS.split(' ')],
  ] as const) {
    const r = await fanOut(makeSecret, [...options]);
    process.stdout.write(`  ${name}: open ${fmt(r.openMs)} ms, rotations ${r.rotationMs.map((m) => fmt(m)).join(' / ')} ms (${fmt(r.rotationCpuMs)} ms CPU each), ${fmt(r.heapPerStream / 1024, 1)} KB live / ${fmt(r.rssPerStream / 1024, 1)} KB RSS per stream\n`);
    runs.push([name, r]);
  }
  const streams = runs[0]![1].streams;
  const met = (r: FanOut) => Math.max(...r.rotationMs) <= TARGET_MS && r.rssPerStream <= TARGET_BYTES_PER_STREAM;
  const cells = (f: (r: FanOut) => string) => runs.map(([, r]) => f(r)).join(' | ');
  writeSection(
    'sds',
    [
      '## SDS fan-out (agent-side store, one process)',
      '',
      `${fmt(streams)} StreamSecrets streams over ${fmt(CONNECTIONS)} connections on one Unix socket, each subscribed to \`default\` and ACKing like Envoy. ` +
        'The server runs in a process of its own on the JavaScript build, as the agent does; the clients in another. ' +
        'A rotation is one new `default` secret (new key and certificate) set in the store; the time is until every stream has received it. Memory is read in the server after full GCs, before the streams open and once they all hold their first secret.',
      '',
      `| measure | ${runs.map(([name]) => name).join(' | ')} | target |`,
      `| --- | ${runs.map(() => '---:').join(' | ')} | ---: |`,
      `| streams open and served their first secret | ${cells((r) => `${fmt(r.openMs)} ms`)} | |`,
      `| rotation reaches all streams (worst of ${ROTATIONS}) | ${cells((r) => `${fmt(Math.max(...r.rotationMs))} ms`)} | ≤ ${fmt(TARGET_MS)} ms |`,
      `| rotation reaches all streams (each) | ${cells((r) => `${r.rotationMs.map((m) => fmt(m)).join(' / ')} ms`)} | |`,
      `| server CPU per rotation (sending to every stream, reading the ACKs) | ${cells((r) => `${fmt(r.rotationCpuMs)} ms`)} | |`,
      `| process RSS growth per stream | ${cells((r) => `${fmt(r.rssPerStream / 1024, 1)} KB`)} | ≤ ${TARGET_BYTES_PER_STREAM / 1024} KB |`,
      `| live memory per stream (heap used + external) | ${cells((r) => `${fmt(r.heapPerStream / 1024, 1)} KB`)} | |`,
      `| V8 heap reserved per stream (heap total + external) | ${cells((r) => `${fmt(r.reservedPerStream / 1024, 1)} KB`)} | |`,
      '',
      `Encoded once per rotation and shared: each stream writes the same response bytes. Targets (RSS per stream and rotation time): ${runs.map(([name, r]) => `${name}: ${met(r) ? 'met' : 'not met'}`).join('; ')}. ` +
        'RSS grows more than live memory: V8 keeps heap reserved while the streams were set up and does not hand it back to the OS (reused, not leaked); a memory limit must allow for it.',
    ].join('\n'),
  );
}
