// End-to-end CreateCertificate: `meshca serve` in its own process, the load generator
// (bench/load_client.ts) in another, 64 requests in flight over TLS with distinct pods' tokens and
// distinct CSRs, on three authentication paths (JWKS, TokenReview with a warm cache, mutual-TLS
// renewal), ledger on; JWKS again with --workers 2; the transport floor (bench/floor_server.ts: a
// no-op grpc-js TLS server, 1 and 2 processes); cfssl's sign API on the same CSRs in the same run;
// then the restart storms.

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCsrPem, generateKeyPair } from '../src/pki/index.ts';
import { FakeKubeApiServer } from '../test/fakes/kube_api_server.ts';
import { CaClient } from '../test/helpers/ca_client.ts';
import { startServeProcess, type ServeProcess } from '../test/helpers/serve.ts';
import type { LoadSetup, PhaseResult } from './load_client.ts';
import { loadAverage, mainThreadCpuSeconds, procStats, startLoadClient } from './procs.ts';
import { fmt, writeSection } from './report.ts';
import { describeMemory, sampleServeMemory } from './serve_memory.ts';
import { freshSchemaUrl } from './scaling.ts';

const CONCURRENCY = 64;
/** Distinct pods: one token and one CSR each. The restart storm sends all of them at once. */
const PODS = Number(process.env.BENCH_PODS ?? 5000);
/** Requests before the measured ones (JIT, TLS connections, caches of issuer keys). */
const WARMUP = 500;
/** TokenReview with a warm cache: this many tokens reviewed first, then each presented again. */
const REVIEWED = Math.min(PODS, 2000);
const STORM_RETRY_MS = 120_000;
/** BENCH_PATHS=jwks,cfssl runs only those parts (all by default). */
const PATHS = new Set((process.env.BENCH_PATHS ?? 'jwks,workers,floor,noledger,postgres,tokenreview,mtls,cfssl,storm').split(','));
/** The --workers row and the floor's multi-process row use this many processes. */
const WORKERS = 2;

const JWKS_ROW = 'meshca, `--authn jwks`, SQLite ledger';
const NO_LEDGER_ROW = 'meshca, `--authn jwks`, ledger off (`memory:`)';
const WORKERS_ROW = `meshca, \`--authn jwks\`, SQLite ledger, \`--workers ${WORKERS}\``;
const FLOOR_ROW = 'transport floor: grpc-js over TLS, no-op CreateCertificate (same response size), 1 process';
const FLOOR_WORKERS_ROW = `transport floor, ${WORKERS} processes (node:cluster)`;

interface Row {
  readonly name: string;
  readonly r: PhaseResult;
  readonly serverCpuPer1000: number;
  readonly peakRssMb: number;
  readonly load: number;
}

function rowOf(name: string, r: PhaseResult, cpuSeconds: number, peakRssMb: number, load: number): Row {
  return { name, r, serverCpuPer1000: (cpuSeconds / Math.max(1, r.ok)) * 1000, peakRssMb, load };
}

function clientCpuPer1000(x: Row): number {
  return (x.r.clientCpuSeconds / Math.max(1, x.r.ok)) * 1000;
}

/**
 * Requests/s the machine's cores would give if server and load generator had them to themselves:
 * cores / (server + client CPU seconds per request). Independent of what else runs on the machine,
 * so it compares meshca with cfssl fairly on a shared host.
 */
function ceiling(x: Row): number {
  return (os.cpus().length * 1000) / (x.serverCpuPer1000 + clientCpuPer1000(x));
}

/** Issue 8's figure: how much of the JWKS path's server CPU per issuance the SQLite ledger adds. */
function ledgerCost(rows: readonly Row[]): string {
  const on = rows.find((r) => r.name === JWKS_ROW);
  const off = rows.find((r) => r.name === NO_LEDGER_ROW);
  if (!on || !off) return '';
  return `Ledger cost (SQLite vs \`memory:\`, JWKS path): ${fmt((1 - off.serverCpuPer1000 / on.serverCpuPer1000) * 100, 1)}% of the server\u2019s CPU per issuance, ${fmt((1 - (on.r.ok / on.r.seconds) / (off.r.ok / off.r.seconds)) * 100, 1)}% of requests/s (target: under 15%).`;
}

/** meshca beside the transport floor (same process count) and cfssl: as measured, and by CPU per request. */
function floorRatios(rows: readonly Row[], cfssl: Row | undefined): string[] {
  const rate = (x: Row) => x.r.ok / x.r.seconds;
  const pair = (label: string, meshca: Row | undefined, floor: Row | undefined): string[] => {
    if (!meshca) return [];
    const toFloor = floor ? `meshca / floor = **${fmt(rate(meshca) / rate(floor), 2)}** as measured, ${fmt(ceiling(meshca) / ceiling(floor), 2)} by CPU` : 'no floor measured';
    const toCfssl = cfssl ? `meshca / cfssl = ${fmt(rate(meshca) / rate(cfssl), 2)} as measured, ${fmt(ceiling(meshca) / ceiling(cfssl), 2)} by CPU` : 'no cfssl';
    return [`${label}: ${toFloor}; ${toCfssl}.`];
  };
  const find = (name: string) => rows.find((r) => r.name === name);
  return [...pair('JWKS, 1 process', find(JWKS_ROW), find(FLOOR_ROW)), ...pair(`JWKS, \`--workers ${WORKERS}\``, find(WORKERS_ROW), find(FLOOR_WORKERS_ROW))];
}

function errorsText(errors: Record<string, number>): string {
  const entries = Object.entries(errors);
  return entries.length === 0 ? '0' : entries.map(([code, n]) => `${fmt(n)} (${code})`).join(', ');
}

/** CPU seconds and peak RSS summed over a server's processes (a cluster's primary and workers). */
function sumStats(pids: readonly number[]): { cpuSeconds: number; peakRssMb: number } {
  const stats = pids.map(procStats);
  return { cpuSeconds: stats.reduce((a, x) => a + x.cpuSeconds, 0), peakRssMb: stats.reduce((a, x) => a + x.peakRssMb, 0) };
}

/** Runs `measured` requests after a warm-up against a server's processes; CPU and memory from /proc, summed. */
async function measure(name: string, pid: number | readonly number[], setup: LoadSetup, range: { warm: [number, number]; measured: [number, number]; wrap?: number }, httpAddress?: string): Promise<Row> {
  const pids = typeof pid === 'number' ? [pid] : pid;
  const client = await startLoadClient(setup);
  try {
    process.stdout.write(`  ${name}: warm-up ${fmt(range.warm[1] - range.warm[0])} requests… `);
    const warm = await client.phase({ from: range.warm[0], to: range.warm[1], concurrency: CONCURRENCY, retryForMs: 60_000 });
    const before = sumStats(pids);
    const mainBefore = mainThreadCpuSeconds(pids[0]!);
    const load = loadAverage();
    process.stdout.write(`measuring ${fmt(range.measured[1] - range.measured[0])}… `);
    const memory = httpAddress ? sampleServeMemory(httpAddress) : undefined;
    const r = await client.phase({ from: range.measured[0], to: range.measured[1], concurrency: CONCURRENCY, ...(range.wrap ? { wrap: range.wrap } : {}) });
    const after = sumStats(pids);
    // The first process's event loop alone (its main thread), without V8's and libuv's other threads.
    const mainCpu = mainThreadCpuSeconds(pids[0]!) - mainBefore;
    const peak = await memory?.stop();
    process.stdout.write(`${fmt(r.ok / r.seconds)}/s, p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms, server ${fmt(after.cpuSeconds - before.cpuSeconds, 1)} CPU-s (main thread ${fmt(mainCpu, 1)}; per 1,000: ${fmt(((after.cpuSeconds - before.cpuSeconds) / Math.max(1, r.ok)) * 1000, 2)} / ${fmt((mainCpu / Math.max(1, r.ok)) * 1000, 2)}), client ${fmt(r.clientCpuSeconds, 1)} CPU-s, peak RSS ${fmt(after.peakRssMb)} MB, errors ${errorsText(r.errors)} (load ${fmt(load, 1)}${Object.keys(warm.errors).length ? `; warm-up errors ${errorsText(warm.errors)}` : ''})\n`);
    if (peak) process.stdout.write(`    at peak: ${describeMemory(peak)}\n`);
    return rowOf(name, r, after.cpuSeconds - before.cpuSeconds, after.peakRssMb, (load + loadAverage()) / 2);
  } finally {
    await client.close();
  }
}

/**
 * BENCH_CPU_PROF=<dir>: every serve writes a V8 CPU profile there (summarise with bench/profile.ts).
 * BENCH_SERVE_NODE_OPTIONS: more Node options for every serve (e.g. to try a V8 flag).
 * BENCH_SERVE_ARGS: more meshca flags for every serve (e.g. "--max-streams-per-connection 16").
 * BENCH_STORMS=jwks: only that restart storm (with BENCH_PATHS=storm).
 */
const SERVE_NODE_OPTIONS = [process.env.BENCH_CPU_PROF ? `--cpu-prof --cpu-prof-dir=${process.env.BENCH_CPU_PROF}` : '', process.env.BENCH_SERVE_NODE_OPTIONS ?? ''].join(' ').trim();
const PROFILE_ENV: Record<string, string> = SERVE_NODE_OPTIONS ? { NODE_OPTIONS: SERVE_NODE_OPTIONS } : {};
const EXTRA_ARGS = (process.env.BENCH_SERVE_ARGS ?? '').split(' ').filter(Boolean);

/** The primary's and the workers' pids, from the "meshca serve listening" line of `--workers N`. */
function servePids(serve: ServeProcess): number[] {
  const line = serve.output().split('\n').find((l) => l.includes('"msg":"meshca serve listening"'));
  const { pids } = JSON.parse(line!) as { pids?: number[] };
  return [serve.child.pid!, ...(pids ?? [])];
}

/** The floor's TLS identity: a self-signed P-256 certificate for localhost (meshca's serving key type). */
function floorIdentity(dir: string): { certFile: string; keyFile: string; rootPem: string } {
  const certFile = join(dir, 'floor-cert.pem');
  const keyFile = join(dir, 'floor-key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl could not make the floor's certificate: ${r.stderr}`);
  return { certFile, keyFile, rootPem: readFileSync(certFile, 'utf8') };
}

/** Runs bench/floor_server.ts with `workers` processes until `fn` is done. */
async function withFloor<T>(env: Record<string, string>, workers: number, fn: (address: string, pids: number[]) => Promise<T>): Promise<T> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./floor_server.ts', import.meta.url))], { env: { ...process.env, ...env, ...PROFILE_ENV, FLOOR_WORKERS: String(workers) }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d;
        const m = /floor listening (.*)\n/.exec(out);
        if (m) resolve(m[1]!);
      });
      void exited.then(() => reject(new Error(`the floor server exited before listening: ${out}`)));
    });
    const [address, ...pids] = line.split(' ');
    return await fn(address!, pids.map(Number));
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

async function withServe<T>(args: string[], fn: (serve: ServeProcess) => Promise<T>): Promise<T> {
  const serve = await startServeProcess([...args, ...EXTRA_ARGS], PROFILE_ENV);
  try {
    return await fn(serve);
  } finally {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
}

function ensureCfssl(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v cfssl'], { encoding: 'utf8' }).stdout.trim();
  if (found) return found;
  process.stdout.write('  cfssl not found; installing Debian golang-cfssl (apt-get)…\n');
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const r = spawnSync(sudo[0] ?? 'apt-get', [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), 'install', '-y', 'golang-cfssl'], { stdio: 'inherit' });
  if (r.status !== 0) return undefined;
  return spawnSync('sh', ['-c', 'command -v cfssl'], { encoding: 'utf8' }).stdout.trim() || undefined;
}

async function measureCfssl(dir: string, keys: string, dataFile: string): Promise<Row | undefined> {
  const bin = ensureCfssl();
  if (!bin) return undefined;
  const config = join(dir, 'cfssl.json');
  writeFileSync(config, JSON.stringify({ signing: { default: { expiry: '1h', usages: ['digital signature', 'key encipherment', 'server auth', 'client auth'] } } }));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn(bin, ['serve', '-address', '127.0.0.1', '-port', String(port), '-ca', join(keys, 'ca-cert.pem'), '-ca-key', join(keys, 'ca-key.pem'), '-config', config, '-loglevel', '5'], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (let i = 0; i < 100; i++) {
      const up = await fetch(`http://127.0.0.1:${port}/api/v1/cfssl/health`).then(
        () => true,
        () => false,
      );
      if (up) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return await measure('cfssl serve (sign API, plain HTTP, no authentication, no record)', child.pid!, { kind: 'cfssl', address: `127.0.0.1:${port}`, dataFile, channels: CONCURRENCY }, {
      warm: [0, WARMUP],
      measured: [WARMUP, PODS],
    });
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-bench-'));
  const keys = join(dir, 'keys');
  const fake = await FakeKubeApiServer.start();
  try {
    const kubeconfig = fake.writeKubeconfig(dir);
    const first = await startServeProcess(['--keys', keys, '--db', 'memory:']);
    first.child.kill('SIGTERM');
    await first.exited;
    const rootPem = readFileSync(join(keys, 'root-cert.pem'), 'utf8');

    let t0 = performance.now();
    process.stdout.write(`  minting ${fmt(PODS)} bound service-account tokens (RS256, one pod each) and ${fmt(PODS)} P-256 CSRs… `);
    const tokens: string[] = [];
    for (let i = 0; i < PODS; i++) tokens.push(await fake.tokens.mint({ namespace: `ns${i % 50}`, serviceAccount: `sa${i % 500}`, podName: `pod-${i}`, expiresInSeconds: 3600 }));
    const csrs = Array.from({ length: PODS }, () => createCsrPem(generateKeyPair('ec-p256').privateKey));
    const dataFile = join(dir, 'load.json');
    writeFileSync(dataFile, JSON.stringify({ tokens, csrs }));
    process.stdout.write(`${fmt((performance.now() - t0) / 1000, 1)} s\n`);

    const grpc = (address: string, extra: Partial<LoadSetup> = {}): LoadSetup => ({ kind: 'grpc', address, rootPem, serverName: 'localhost', dataFile, channels: 8, ...extra });
    // One CA, one ledger: each run gets its own copy of the CA (same root and intermediate), since
    // a CA's ledger key refuses a ledger other than the one it has signed.
    const common = (name: string) => ['--keys', copyKeys(name), '--kubeconfig', kubeconfig, '--dev-tokens=false'];
    const copyKeys = (name: string) => {
      const own = join(dir, `keys-${name}`);
      cpSync(keys, own, { recursive: true });
      return own;
    };
    const sqlite = (name: string) => `sqlite:${join(dir, `${name}.db`)}`;
    const full: { warm: [number, number]; measured: [number, number] } = { warm: [0, WARMUP], measured: [WARMUP, PODS] };
    const rows: Row[] = [];
    let restAfterStart: { rssMb: number } | undefined;

    // The floor answers what meshca answers: one real CreateCertificate response, kept from the first meshca row.
    const responseFile = join(dir, 'floor-response.json');
    const keepResponse = async (serve: ServeProcess) => {
      if (existsSync(responseFile)) return;
      const client = new CaClient({ address: serve.grpcAddress, rootPem, serverName: 'localhost' });
      try {
        writeFileSync(responseFile, JSON.stringify((await client.createCertificate({ csr: csrs[0]!, token: tokens[0]! })).certChain));
      } finally {
        client.close();
      }
    };
    if (PATHS.has('jwks')) {
      rows.push(
        await withServe([...common('jwks'), '--authn', 'jwks', '--db', sqlite('jwks')], async (serve) => {
          restAfterStart = { rssMb: procStats(serve.child.pid!).rssMb };
          await keepResponse(serve);
          return measure(JWKS_ROW, serve.child.pid!, grpc(serve.grpcAddress), full, serve.httpAddress);
        }),
      );
    }
    // More than one core: the same path with node:cluster workers; CPU and RSS summed over the primary and the workers.
    let workersRest: { rssMb: number } | undefined;
    let primaryShare: number | undefined;
    if (PATHS.has('workers')) {
      rows.push(
        await withServe([...common('workers'), '--authn', 'jwks', '--db', sqlite('workers'), '--workers', String(WORKERS)], async (serve) => {
          const pids = servePids(serve);
          workersRest = { rssMb: pids.map((p) => procStats(p).rssMb).reduce((a, b) => a + b, 0) };
          await keepResponse(serve);
          const primaryBefore = procStats(pids[0]!).cpuSeconds;
          const row = await measure(WORKERS_ROW, pids, grpc(serve.grpcAddress), full);
          // The primary's own share (the ledger's one writer, IPC, connection hand-off), warm-up included.
          primaryShare = (procStats(pids[0]!).cpuSeconds - primaryBefore) / (row.serverCpuPer1000 * (row.r.ok + WARMUP) / 1000);
          return row;
        }),
      );
    }
    // The physical ceiling on this machine: the same load against a server that does no CA work.
    if (PATHS.has('floor') && existsSync(responseFile)) {
      const identity = floorIdentity(dir);
      const env = { FLOOR_CERT: identity.certFile, FLOOR_KEY: identity.keyFile, FLOOR_RESPONSE: responseFile };
      const floorSetup = (address: string) => grpc(address, { rootPem: identity.rootPem });
      rows.push(await withFloor(env, 1, (address, pids) => measure(FLOOR_ROW, pids, floorSetup(address), full)));
      rows.push(await withFloor(env, WORKERS, (address, pids) => measure(FLOOR_WORKERS_ROW, pids, floorSetup(address), full)));
    }
    // The ledger's share of an issuance as a user sees it (issue 8's target: under 15%).
    if (PATHS.has('noledger')) {
      rows.push(await withServe([...common('noledger'), '--authn', 'jwks', '--db', 'memory:'], (serve) => measure(NO_LEDGER_ROW, serve.child.pid!, grpc(serve.grpcAddress), full, serve.httpAddress)));
    }
    const postgres = process.env.MESHCA_TEST_POSTGRES_URL && (await freshSchemaUrl(process.env.MESHCA_TEST_POSTGRES_URL, 'bench_e2e'));
    if (postgres && PATHS.has('postgres')) {
      rows.push(await withServe([...common('postgres'), '--authn', 'jwks', '--db', postgres], (serve) => measure('meshca, `--authn jwks`, PostgreSQL ledger', serve.child.pid!, grpc(serve.grpcAddress), full, serve.httpAddress)));
    }
    if (PATHS.has('tokenreview')) rows.push(
      await withServe([...common('tokenreview'), '--authn', 'tokenreview', '--kube-qps', '1000', '--kube-burst', '1000', '--db', sqlite('tokenreview')], (serve) =>
        measure('meshca, `--authn tokenreview`, warm cache, SQLite ledger', serve.child.pid!, grpc(serve.grpcAddress), { warm: [0, REVIEWED], measured: [0, Math.max(REVIEWED, PODS - WARMUP)], wrap: REVIEWED }, serve.httpAddress),
      ),
    );
    if (PATHS.has('mtls')) rows.push(
      await withServe([...common('mtls'), '--authn', 'jwks', '--db', sqlite('mtls')], (serve) =>
        measure('meshca, mutual-TLS renewal (64 workloads, one connection each), SQLite ledger', serve.child.pid!, grpc(serve.grpcAddress, { mtls: true, channels: CONCURRENCY }), full, serve.httpAddress),
      ),
    );
    const cfssl = PATHS.has('cfssl') ? await measureCfssl(dir, keys, dataFile) : undefined;

    const jwks = rows.find((r) => r.name === JWKS_ROW);
    const floorLines = floorRatios(rows, cfssl);
    for (const l of floorLines) process.stdout.write(`  ${l}\n`);
    const line = (x: Row) =>
      `| ${x.name} | ${fmt(x.r.ok / x.r.seconds)} | ${fmt(x.r.p50, 1)} ms | ${fmt(x.r.p99, 1)} ms | ${fmt(x.serverCpuPer1000, 2)} s | ${fmt(clientCpuPer1000(x), 2)} s | ${fmt(ceiling(x))} | ${fmt(x.peakRssMb)} MB | ${errorsText(x.r.errors)} | ${fmt(x.load, 1)} |`;
    const ratio = cfssl && jwks ? (jwks.r.ok / jwks.r.seconds) / (cfssl.r.ok / cfssl.r.seconds) : undefined;
    const cpuRatio = cfssl && jwks ? ceiling(jwks) / ceiling(cfssl) : undefined;
    if (ratio !== undefined) process.stdout.write(`\n  meshca (jwks, SQLite) / cfssl = ${fmt(ratio, 2)} measured, ${fmt(cpuRatio!, 2)} by CPU per request\n`);

    // Restart storms: every pod at once, each with its own connection share; UNAVAILABLE is retried after its hint.
    const storms: string[] = [];
    for (const mode of PATHS.has('storm') ? (['jwks', 'tokenreview'] as const).filter((m) => !process.env.BENCH_STORMS || process.env.BENCH_STORMS.includes(m)) : []) {
      const args = [...common(`storm-${mode}`), '--authn', mode, '--db', sqlite(`storm-${mode}`), ...(mode === 'tokenreview' ? ['--kube-qps', '200', '--kube-burst', '400'] : [])];
      storms.push(
        await withServe(args, async (serve) => {
          const client = await startLoadClient(grpc(serve.grpcAddress, { channels: 50 }));
          try {
            fake.resetCalls();
            const load = loadAverage();
            const before = procStats(serve.child.pid!);
            const memory = sampleServeMemory(serve.httpAddress, 250);
            process.stdout.write(`  restart storm, --authn ${mode}: ${fmt(PODS)} pods at once… `);
            t0 = performance.now();
            const r = await client.phase({ from: 0, to: PODS, concurrency: PODS, retryForMs: STORM_RETRY_MS, deadlineMs: 60_000 });
            const after = procStats(serve.child.pid!);
            const peak = await memory.stop();
            const reviews = fake.tokenReviewCount();
            const perSecond = fake.callsPerSecond('tokenreviews');
            process.stdout.write(`${fmt(r.seconds, 1)} s\n`);
            const spread = mode === 'tokenreview' ? `${fmt(reviews)} TokenReviews, ${fmt(Math.max(0, ...perSecond))}/s at peak over ${perSecond.length} s` : `${fmt(fake.callCount('GET'))} GETs (discovery + JWKS)`;
            const row = `| \`--authn ${mode}\` | ${fmt(PODS)} | ${fmt(r.seconds, 2)} s | ${fmt(r.ok)} | ${errorsText(r.errors)} | ${fmt(r.retries)} | ${fmt(r.p50, 0)} / ${fmt(r.p99, 0)} / ${fmt(r.max, 0)} ms | ${spread} | ${fmt(after.cpuSeconds - before.cpuSeconds, 1)} s | ${fmt(after.peakRssMb)} MB | ${fmt(load, 1)} |`;
            process.stdout.write(`  ${row}\n`);
            if (peak) process.stdout.write(`    at peak: ${describeMemory(peak)}\n`);
            return row;
          } finally {
            await client.close();
          }
        }),
      );
    }

    writeSection(
      'e2e',
      [
        '## End to end: CreateCertificate over TLS',
        '',
        `\`meshca serve\` in its own process (logging one line per request), the load generator (\`bench/load_client.ts\`, grpc-js) in another, ${CONCURRENCY} requests in flight over TLS on loopback. ` +
          `${fmt(PODS)} distinct pods, each with its own bound service-account token (RS256, signed by the fake Kubernetes API server) and its own P-256 CSR, made before the run. ` +
          `Each measured request presents a token and a CSR the server has not seen in that run (JWKS and mutual-TLS rows, after a ${WARMUP}-request warm-up), ` +
          `or a token already reviewed (TokenReview row: ${fmt(REVIEWED)} tokens reviewed first, each then presented again). ` +
          'Mutual-TLS renewal: 64 workloads each get a certificate with their token, then renew over their own connection presenting it, with new CSRs. ' +
          'cfssl (Debian `golang-cfssl`) signs the same CSRs with the same intermediate, as in the issue: plain HTTP, no authentication, no record. ' +
          `\`--workers ${WORKERS}\`: the JWKS row again with ${WORKERS} node:cluster workers on the port and the primary writing the one ledger. ` +
          'Transport floor (`bench/floor_server.ts`): a grpc-js server over TLS (P-256) whose CreateCertificate does nothing but answer a real meshca response of the same size, driven the same way, with 1 and with ' +
          `${WORKERS} processes: the ceiling of a Node gRPC-over-TLS server on this machine. ` +
          'CPU s per 1,000: the server process (or cfssl) and, separately, the load generator; everything shares the machine\u2019s two cores. Peak RSS is the server\u2019s VmHWM.',
        '',
        `| path | requests/s | p50 | p99 | server CPU s / 1,000 | client CPU s / 1,000 | CPU-bound ceiling, ${os.cpus().length} cores (req/s) | peak RSS | errors | load avg |`,
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        ...rows.map(line),
        ...(cfssl ? [line(cfssl)] : ['| cfssl | not installed | | | | | | | | |']),
        '',
        ratio !== undefined
          ? `**meshca / cfssl = ${fmt(ratio, 2)}** as measured, **${fmt(cpuRatio!, 2)}** by CPU per request (the ceilings' ratio, which the machine's other load does not skew) (JWKS path, SQLite ledger; target ≥ 1.0, p99 ≤ 20 ms).`
          : 'cfssl could not be installed; no ratio.',
        'CPU-bound ceiling: the cores divided by the server\u2019s and the load generator\u2019s CPU per request, what the run would reach if it had the machine to itself.',
        restAfterStart ? `\`serve\` RSS just after start (before load): ${fmt(restAfterStart.rssMb)} MB.` : '',
        workersRest ? `\`serve --workers ${WORKERS}\` RSS just after start, summed over the primary and the workers: ${fmt(workersRest.rssMb)} MB. Its CPU per 1,000 and peak RSS are summed over its ${WORKERS + 1} processes, as are the ${WORKERS}-process floor's${primaryShare !== undefined ? `; the primary (the ledger's one writer) spent ${fmt(primaryShare * 100, 1)}% of that CPU` : ''}.` : '',
        ...floorLines,
        ledgerCost(rows),
        '',
        `### Restart storm: ${fmt(PODS)} pods at once`,
        '',
        `Every pod's request sent at once over 50 connections (a fresh \`serve\`, SQLite ledger); a request answered UNAVAILABLE is retried after the hint in its message (\"retry in Ns\") with ±50% jitter, as an agent backs off, for up to ${STORM_RETRY_MS / 1000} s. ` +
          'TokenReview: --kube-qps 200 --kube-burst 400 (the defaults, 50/100, would take 100 s for 5,000 new pods by design).',
        '',
        '| authentication | pods | all answered after | certificates | errors | retries | latency p50 / p99 / max | API server | server CPU | peak RSS | load avg |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
        ...storms,
      ].join('\n'),
    );
  } finally {
    await fake.close();
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  }
}
