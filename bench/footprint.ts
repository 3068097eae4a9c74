// Footprint: start-up time and resident memory of `meshca version`, `meshca serve` at rest and of
// `meshca agent` once it holds its first certificate, each in its own process through the real
// command line; and what an agent's memory is made of (node itself, the TypeScript type stripper,
// grpc-js, Envoy's SDS protos), measured by loading each layer alone in a fresh process.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDevIssuer } from '../src/authn/index.ts';
import { MESHCA_BIN, REPO_ROOT, startServeProcess } from '../test/helpers/serve.ts';
import { loadAverage, procStats } from './procs.ts';
import { fmt, writeSection } from './report.ts';

const RUNS = Number(process.env.BENCH_FOOTPRINT_RUNS ?? 5);
const SETTLE_MS = 2000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function versionMs(): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [MESHCA_BIN, 'version'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`meshca version failed: ${r.stderr}`);
  return performance.now() - t0;
}

/** RSS of a fresh node process after evaluating `code` (an ES module) and a settle. */
function layerRssMb(code: string, file: 'mjs' | 'ts'): number {
  const dir = mkdtempSync(join(REPO_ROOT, '.bench-layer-'));
  try {
    const path = join(dir, `layer.${file}`);
    writeFileSync(path, `${code}\nawait new Promise((r) => setTimeout(r, 300));\nprocess.stdout.write(String(process.memoryUsage.rss()));\n`);
    const r = spawnSync(process.execPath, [path], { encoding: 'utf8', cwd: REPO_ROOT });
    if (r.status !== 0) throw new Error(`layer failed: ${r.stderr}`);
    return Number(r.stdout) / 2 ** 20;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface AgentRun {
  readyMs: number;
  firstCertMs: number;
  rssMb: number;
  settledRssMb: number;
}

async function runAgent(dir: string, caAddress: string, rootPath: string, tokenPath: string, i: number, nodeFlags: readonly string[] = []): Promise<AgentRun> {
  const socket = join(dir, `sds-${i}.sock`);
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [...nodeFlags, MESHCA_BIN, 'agent', '--ca-addr', caAddress, '--ca-name', 'localhost', '--root-cert', rootPath, '--token-file', tokenPath, '--sds-socket', socket, '--http-listen', '127.0.0.1:0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let readyMs = NaN;
  let firstCertMs = NaN;
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (let waited = 0; waited < 30_000 && Number.isNaN(firstCertMs); waited += 5) {
      if (Number.isNaN(readyMs) && existsSync(socket)) readyMs = performance.now() - t0;
      if (out.includes('got the first certificate')) firstCertMs = performance.now() - t0;
      await sleep(5);
    }
    if (Number.isNaN(firstCertMs)) throw new Error(`agent did not get a certificate:\n${out}`);
    const rssMb = procStats(child.pid!).rssMb;
    await sleep(SETTLE_MS);
    return { readyMs, firstCertMs, rssMb, settledRssMb: procStats(child.pid!).rssMb };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-bench-footprint-'));
  const keys = join(dir, 'keys');
  try {
    // What `npm install` (prepare) leaves: bin/meshca.js runs dist/ while it is current.
    const build = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/build.js')], { encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`npm run build failed: ${build.stderr}`);
    const load0 = loadAverage();
    const version = median(Array.from({ length: RUNS }, versionMs));
    process.stdout.write(`  meshca version: ${fmt(version)} ms (median of ${RUNS})\n`);

    const serveRuns: { startMs: number; rssMb: number; settledMb: number }[] = [];
    let caAddress = '';
    let serveToStop: Awaited<ReturnType<typeof startServeProcess>> | undefined;
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const serve = await startServeProcess(['--keys', keys, '--db', `sqlite:${join(dir, 'ledger.db')}`]);
      const startMs = performance.now() - t0;
      const rssMb = procStats(serve.child.pid!).rssMb;
      await sleep(SETTLE_MS);
      serveRuns.push({ startMs, rssMb, settledMb: procStats(serve.child.pid!).rssMb });
      if (i < RUNS - 1) {
        serve.child.kill('SIGTERM');
        await serve.exited;
      } else {
        serveToStop = serve;
        caAddress = serve.grpcAddress;
      }
    }
    const serveStart = median(serveRuns.slice(1).map((r) => r.startMs));
    const serveRss = median(serveRuns.map((r) => r.settledMb));
    process.stdout.write(`  meshca serve: listening after ${fmt(serveStart)} ms, ${fmt(serveRss)} MB RSS at rest\n`);

    const agents: AgentRun[] = [];
    const liteAgents: AgentRun[] = [];
    try {
      const dev = await loadDevIssuer(keys, false);
      const tokenPath = join(dir, 'token');
      writeFileSync(tokenPath, await dev.mint({ namespace: 'bench', serviceAccount: 'agent', podName: 'agent-0', audience: 'meshca', ttlMs: 3600_000, nowMs: Date.now() }));
      for (let i = 0; i < RUNS; i++) agents.push(await runAgent(dir, caAddress, join(keys, 'root-cert.pem'), tokenPath, i));
      // V8's lite mode (no optimizing compiler, lazy feedback vectors): an agent is idle nearly always.
      for (let i = 0; i < RUNS; i++) liteAgents.push(await runAgent(dir, caAddress, join(keys, 'root-cert.pem'), tokenPath, RUNS + i, ['--lite-mode']));
    } finally {
      serveToStop?.child.kill('SIGTERM');
      await serveToStop?.exited;
    }
    const agent = {
      readyMs: median(agents.map((a) => a.readyMs)),
      firstCertMs: median(agents.map((a) => a.firstCertMs)),
      rssMb: median(agents.map((a) => a.rssMb)),
      settledRssMb: median(agents.map((a) => a.settledRssMb)),
    };
    const liteRssMb = median(liteAgents.map((a) => a.settledRssMb));
    const liteReadyMs = median(liteAgents.map((a) => a.readyMs));
    process.stdout.write(`  meshca agent under node --lite-mode: ${fmt(liteRssMb)} MB RSS, SDS socket after ${fmt(liteReadyMs)} ms\n`);
    process.stdout.write(`  meshca agent: SDS socket after ${fmt(agent.readyMs)} ms, first certificate after ${fmt(agent.firstCertMs)} ms, ${fmt(agent.settledRssMb)} MB RSS\n`);

    const layers: [string, number][] = [
      ['node, an empty ES module', layerRssMb('', 'mjs')],
      ['node, an empty .ts file (the type stripper loaded)', layerRssMb('', 'ts')],
      ['+ @grpc/grpc-js', layerRssMb("await import('@grpc/grpc-js');", 'ts')],
      ['+ Envoy SDS protos (src/sds loadSdsProtos)', layerRssMb("await import('@grpc/grpc-js'); const { loadSdsProtos } = await import('../src/sds/protos.ts'); loadSdsProtos();", 'ts')],
      ['+ the agent command module (src/cli/commands/agent.ts)', layerRssMb("await import('../src/cli/commands/agent.ts'); const { loadSdsProtos } = await import('../src/sds/protos.ts'); loadSdsProtos();", 'ts')],
      ['the same agent modules built as JavaScript (dist/), no type stripper', layerRssMb("await import('../dist/cli/commands/agent.js'); const { loadSdsProtos } = await import('../dist/sds/protos.js'); loadSdsProtos();", 'mjs')],
    ];
    for (const [name, mb] of layers) process.stdout.write(`  ${name}: ${fmt(mb)} MB\n`);
    const load1 = loadAverage();

    writeSection(
      'footprint',
      [
        '## Footprint: start-up and memory',
        '',
        `Each through the real command line (\`node bin/meshca.js …\`, which runs the JavaScript in dist/ that \`npm install\` builds) in its own process; medians of ${RUNS} runs; RSS from /proc after a ${SETTLE_MS / 1000} s settle. ` +
          '`serve`: development CA, SQLite ledger, time from spawn to its "listening" log line (first run, which makes the CA, left out). ' +
          '`agent`: development token, its own SDS socket; ready = the SDS socket exists.',
        '',
        '| measure | value | target |',
        '| --- | ---: | ---: |',
        `| \`meshca version\` | ${fmt(version)} ms | ≤ 200 ms |`,
        `| \`meshca serve\` start-up (spawn → listening) | ${fmt(serveStart)} ms | |`,
        `| \`meshca serve\` RSS at rest | ${fmt(serveRss)} MB | ≤ 100 MB |`,
        `| \`meshca agent\` ready (SDS socket up) | ${fmt(agent.readyMs)} ms | ≤ 300 ms |`,
        `| \`meshca agent\` first certificate | ${fmt(agent.firstCertMs)} ms | |`,
        `| \`meshca agent\` RSS after its first certificate | ${fmt(agent.settledRssMb)} MB | ≤ 50 MB |`,
        `| the same, run as \`node --lite-mode bin/meshca.js agent …\` | ${fmt(liteRssMb)} MB (ready after ${fmt(liteReadyMs)} ms) | ≤ 50 MB |`,
        '',
        'What an agent process is made of (RSS of a fresh process loading each layer in turn, 300 ms after loading):',
        '',
        '| layer | RSS |',
        '| --- | ---: |',
        ...layers.map(([name, mb]) => `| ${name} | ${fmt(mb)} MB |`),
        '',
        `Load average while measuring: ${fmt(load0, 1)} → ${fmt(load1, 1)} (2 cores).`,
      ].join('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
