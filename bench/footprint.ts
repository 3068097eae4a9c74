// Footprint: start-up time and resident memory of `meshca version`, `meshca serve` at rest and of
// `meshca agent` once it holds its first certificate (as a user runs it, and as injected into a
// pod), each in its own process through the real command line; what Node itself takes in the same
// run (the ceiling); and the agent after a simulated day of renewals against a real CA (a leak check).
// Memory is RSS and, from /proc/<pid>/smaps_rollup, PSS and private (USS): the node binary's pages
// are shared by every process on a node that runs the same image.

import { fork, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadDevIssuer } from '../src/authn/index.ts';
import { loadSettings } from '../src/config/index.ts';
import { AGENT_NODE_OPTIONS } from '../src/inject/index.ts';
import { createLogger } from '../src/observability/index.ts';
import { serveConfigFrom, SERVE_OPTIONS, startCaServer } from '../src/server/index.ts';
import { HOUR_MS, MINUTE_MS, type Clock } from '../src/time/index.ts';
import { MESHCA_BIN, REPO_ROOT, startServeProcess } from '../test/helpers/serve.ts';
import { EnvoyLikeStream, sdsClient } from '../test/sds/envoy_client.ts';
import { loadAverage, procStats, smapsRollup, type SmapsRollup } from './procs.ts';
import { fmt, writeSection } from './report.ts';

const RUNS = Number(process.env.BENCH_FOOTPRINT_RUNS ?? 5);
const SETTLE_MS = 2000;
/** Simulated days of renewals: the target asks for one; three show whether memory keeps growing. */
const SIMULATED_DAYS = Number(process.env.BENCH_FOOTPRINT_DAYS ?? 3);
/** The agent's default: 1 h certificates, renewed at half their life (~48 a day). */
const AGENT_TTL_MS = HOUR_MS;
const INJECTED_ENV = { NODE_OPTIONS: AGENT_NODE_OPTIONS };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const medianSmaps = (xs: SmapsRollup[]): SmapsRollup => ({
  rssMb: median(xs.map((x) => x.rssMb)),
  pssMb: median(xs.map((x) => x.pssMb)),
  privateMb: median(xs.map((x) => x.privateMb)),
  sharedMb: median(xs.map((x) => x.sharedMb)),
});

function versionMs(): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [MESHCA_BIN, 'version'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`meshca version failed: ${r.stderr}`);
  return performance.now() - t0;
}

/**
 * Memory of a fresh node process (with `env`) that evaluates `code` (an ES module beside the
 * repository, so packages resolve), read from outside after a settle.
 */
async function ceilingOf(code: string, env: Record<string, string> = {}): Promise<SmapsRollup> {
  const dir = mkdtempSync(join(REPO_ROOT, '.bench-layer-'));
  try {
    const path = join(dir, 'layer.mjs');
    writeFileSync(path, `${code}\nprocess.stdout.write('ready\\n');\nsetInterval(() => {}, 1000);\n`);
    const child = spawn(process.execPath, [path], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      void exited.then(() => reject(new Error('layer process exited early')));
    });
    await sleep(SETTLE_MS);
    const m = smapsRollup(child.pid!);
    child.kill('SIGTERM');
    await exited;
    return m;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface AgentRun {
  readyMs: number;
  firstCertMs: number;
  /** The agent's CPU (all threads) from spawn to its first certificate: what the machine's load does not skew. */
  firstCertCpuMs: number;
  settled: SmapsRollup;
}

async function runAgent(dir: string, caAddress: string, rootPath: string, tokenPath: string, i: number, env: Record<string, string> = {}): Promise<AgentRun> {
  const socket = join(dir, `sds-${i}.sock`);
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [MESHCA_BIN, 'agent', '--ca-addr', caAddress, '--ca-name', 'localhost', '--root-cert', rootPath, '--token-file', tokenPath, '--sds-socket', socket, '--http-listen', '127.0.0.1:0'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let out = '';
  let readyMs = NaN;
  let firstCertMs = NaN;
  let firstCertCpuMs = NaN;
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (let waited = 0; waited < 30_000 && Number.isNaN(firstCertMs); waited += 5) {
      if (Number.isNaN(readyMs) && existsSync(socket)) readyMs = performance.now() - t0;
      if (out.includes('got the first certificate')) {
        firstCertMs = performance.now() - t0;
        firstCertCpuMs = procStats(child.pid!).cpuSeconds * 1000;
      }
      await sleep(5);
    }
    if (Number.isNaN(firstCertMs)) throw new Error(`agent did not get a certificate:\n${out}`);
    await sleep(SETTLE_MS);
    return { readyMs, firstCertMs, firstCertCpuMs, settled: smapsRollup(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

interface ChildMemory {
  rssMb: number;
  pssMb: number;
  privateMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
}

interface DayOfRenewals {
  /** After the first certificate (hours 0), then at the end of each simulated day. */
  snapshots: (ChildMemory & { hours: number; renewals: number })[];
  renewals: number;
  timersFired: number;
  wallMs: number;
  /** Responses the SDS stream received after its first one: one per renewal if every renewal reached Envoy. */
  sdsPushes: number;
}

/**
 * Simulated days of renewals: the agent in a child process (bench/footprint_renewals_child.js,
 * the JavaScript build under the injector's NODE_OPTIONS), a real CA here (SQLite ledger, token
 * authentication) and an Envoy-like SDS stream on the agent's socket. The CA's clock is the
 * agent's, moved by the child before each renewal. The CA's own schedules (its serving
 * certificate's renewal, key polling, ledger checkpoints) do not run: a serving certificate made at
 * a simulated hour would not yet be valid for the real-time TLS handshake.
 */
async function dayOfRenewals(dir: string): Promise<DayOfRenewals> {
  const keys = join(dir, 'renewals-keys');
  let caNowMs = Math.ceil(Date.now() / 1000) * 1000;
  const caClock: Clock = { now: () => caNowMs, setTimer: () => ({ cancel() {} }), every: () => ({ cancel() {} }) };
  const { values } = loadSettings(SERVE_OPTIONS, ['--keys', keys, '--db', `sqlite:${join(dir, 'renewals.db')}`, '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0'], {});
  const discard = new Writable({ write: (_chunk, _enc, cb) => cb() });
  const ca = await startCaServer(serveConfigFrom(values), { clock: caClock, log: createLogger('warn', discard) });
  let stream: EnvoyLikeStream | undefined;
  let client: ReturnType<typeof sdsClient> | undefined;
  try {
    const dev = await loadDevIssuer(keys, false);
    const tokenPath = join(dir, 'renewals-token');
    writeFileSync(tokenPath, await dev.mint({ namespace: 'bench', serviceAccount: 'agent', podName: 'agent-0', audience: 'meshca', ttlMs: (SIMULATED_DAYS * 24 + 2) * HOUR_MS, nowMs: caNowMs }));
    const socket = join(dir, 'renewals-sds.sock');
    const child = fork(new URL('./footprint_renewals_child.js', import.meta.url), [], {
      execArgv: ['--expose-gc', ...AGENT_NODE_OPTIONS.split(' ')],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const done = await new Promise<Omit<DayOfRenewals, 'sdsPushes'>>((resolve, reject) => {
        child.on('message', (m: Record<string, unknown>) => {
          if (typeof m.caClock === 'number') {
            caNowMs = m.caClock;
            child.send({ caClockSet: true });
          } else if (m.firstCertificate) {
            client = sdsClient(`unix:${socket}`);
            stream = new EnvoyLikeStream(client, { names: ['default', 'ROOTCA'] });
            stream.responses.waitFor(1, 10_000).then(() => child.send({ sdsConnected: true }), reject);
          } else if (m.done) resolve(m.done as Omit<DayOfRenewals, 'sdsPushes'>);
          else if (m.error) reject(new Error(`renewal child: ${String(m.error)}`));
        });
        void exited.then((code) => reject(new Error(`renewal child exited with ${code}`)));
        child.send({ start: { caAddress: ca.grpcAddress, rootCertPath: join(keys, 'root-cert.pem'), tokenPath, socket, startMs: caNowMs, ttlMs: AGENT_TTL_MS, bundlePollMs: MINUTE_MS, days: SIMULATED_DAYS } });
      });
      return { ...done, sdsPushes: stream!.responses.all.length - 1 };
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  } finally {
    stream?.close();
    client?.close();
    await ca.close(2000);
  }
}

const mem = (m: SmapsRollup) => `${fmt(m.rssMb)} MB RSS, ${fmt(m.pssMb)} MB PSS, ${fmt(m.privateMb)} MB private`;

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

    const plain: AgentRun[] = [];
    const injected: AgentRun[] = [];
    let ceilings: [string, SmapsRollup][];
    try {
      const dev = await loadDevIssuer(keys, false);
      const tokenPath = join(dir, 'token');
      writeFileSync(tokenPath, await dev.mint({ namespace: 'bench', serviceAccount: 'agent', podName: 'agent-0', audience: 'meshca', ttlMs: 3600_000, nowMs: Date.now() }));
      // Alternated, so a change in the machine's load hits both alike.
      for (let i = 0; i < RUNS; i++) {
        plain.push(await runAgent(dir, caAddress, join(keys, 'root-cert.pem'), tokenPath, 2 * i));
        injected.push(await runAgent(dir, caAddress, join(keys, 'root-cert.pem'), tokenPath, 2 * i + 1, INJECTED_ENV));
      }
      // The ceiling, in the same run and with the same flags: Node alone, and Node with a grpc-js
      // client connected to the same CA (what any gRPC agent written for Node holds).
      const grpcClient = `const grpc = await import('@grpc/grpc-js'); const c = new grpc.Client(${JSON.stringify(caAddress)}, grpc.credentials.createSsl()); await new Promise((r) => c.waitForReady(Date.now() + 5000, r));`;
      ceilings = [
        ['node, an empty ES module', await ceilingOf('')],
        ['node, an empty ES module, injected NODE_OPTIONS', await ceilingOf('', INJECTED_ENV)],
        ['node + a grpc-js client connected over TLS, injected NODE_OPTIONS', await ceilingOf(grpcClient, INJECTED_ENV)],
      ];
    } finally {
      serveToStop?.child.kill('SIGTERM');
      await serveToStop?.exited;
    }
    const summary = (runs: AgentRun[]) => ({
      readyMs: median(runs.map((a) => a.readyMs)),
      firstCertMs: median(runs.map((a) => a.firstCertMs)),
      firstCertCpuMs: median(runs.map((a) => a.firstCertCpuMs)),
      settled: medianSmaps(runs.map((a) => a.settled)),
    });
    const agent = summary(plain);
    const asInjected = summary(injected);
    process.stdout.write(`  meshca agent: SDS socket after ${fmt(agent.readyMs)} ms, first certificate after ${fmt(agent.firstCertMs)} ms (${fmt(agent.firstCertCpuMs)} ms CPU), ${mem(agent.settled)}\n`);
    process.stdout.write(`  meshca agent as injected (NODE_OPTIONS=${AGENT_NODE_OPTIONS}): SDS socket after ${fmt(asInjected.readyMs)} ms, first certificate after ${fmt(asInjected.firstCertMs)} ms (${fmt(asInjected.firstCertCpuMs)} ms CPU), ${mem(asInjected.settled)}\n`);
    for (const [name, m] of ceilings) process.stdout.write(`  ${name}: ${mem(m)}\n`);

    process.stdout.write(`  ${SIMULATED_DAYS} simulated days of renewals (${AGENT_TTL_MS / HOUR_MS} h certificates)…\n`);
    const day = await dayOfRenewals(dir);
    const first = day.snapshots[0]!;
    const last = day.snapshots.at(-1)!;
    process.stdout.write(
      `  ${day.renewals} renewals over ${last.hours} simulated hours in ${fmt(day.wallMs / 1000, 1)} s; heap used ${day.snapshots.map((m) => fmt(m.heapUsedMb, 1)).join(' → ')} MB, RSS ${day.snapshots.map((m) => fmt(m.rssMb)).join(' → ')} MB, ${day.sdsPushes} SDS pushes\n`,
    );
    const load1 = loadAverage();

    const floor = ceilings[1]![1];
    const grpcFloor = ceilings[2]![1];
    const row = (name: string, m: SmapsRollup, extra = '') => `| ${name} | ${fmt(m.rssMb)} MB | ${fmt(m.pssMb)} MB | ${fmt(m.privateMb)} MB | ${extra} |`;
    const dayRow = (name: string, m: ChildMemory) => `| ${name} | ${fmt(m.rssMb)} MB | ${fmt(m.pssMb)} MB | ${fmt(m.privateMb)} MB | ${fmt(m.heapUsedMb, 1)} MB | ${fmt(m.heapTotalMb, 1)} MB | ${fmt(m.externalMb, 1)} MB |`;
    writeSection(
      'footprint',
      [
        '## Footprint: start-up and memory',
        '',
        `Each through the real command line (\`node bin/meshca.js …\`, which runs the JavaScript in dist/ that \`npm install\` builds) in its own process; medians of ${RUNS} runs; memory from /proc/<pid>/smaps_rollup after a ${SETTLE_MS / 1000} s settle. ` +
          '`serve`: development CA, SQLite ledger, time from spawn to its "listening" log line (first run, which makes the CA, left out). ' +
          `\`agent\`: development token, its own SDS socket; ready = the SDS socket exists; "as injected" = with the \`NODE_OPTIONS=${AGENT_NODE_OPTIONS}\` the injector sets (no JIT, a 1 MB young generation).`,
        '',
        '| measure | value | target |',
        '| --- | ---: | ---: |',
        `| \`meshca version\` | ${fmt(version)} ms | ≤ 200 ms |`,
        `| \`meshca serve\` start-up (spawn → listening) | ${fmt(serveStart)} ms | |`,
        `| \`meshca serve\` RSS at rest | ${fmt(serveRss)} MB | ≤ 100 MB |`,
        `| \`meshca agent\` ready (SDS socket up) | ${fmt(agent.readyMs)} ms; as injected ${fmt(asInjected.readyMs)} ms | ≤ 300 ms |`,
        `| \`meshca agent\` first certificate | ${fmt(agent.firstCertMs)} ms; as injected ${fmt(asInjected.firstCertMs)} ms | |`,
        `| \`meshca agent\` CPU from spawn to its first certificate (all threads; the load does not skew it) | ${fmt(agent.firstCertCpuMs)} ms; as injected ${fmt(asInjected.firstCertCpuMs)} ms | |`,
        `| \`meshca agent\` RSS after its first certificate | ${fmt(agent.settled.rssMb)} MB; as injected **${fmt(asInjected.settled.rssMb)} MB** | ≤ 50 MB |`,
        '',
        'Memory after the first certificate, beside what Node itself takes in the same run (the ceiling). PSS divides each shared page among the processes that map it (here, mostly the node binary, shared by every pod on a node that runs the same image); private (USS) is what one more agent costs.',
        '',
        '| process | RSS | PSS | private | |',
        '| --- | ---: | ---: | ---: | --- |',
        row('`meshca agent`', agent.settled),
        row('`meshca agent`, as injected', asInjected.settled, `RSS ${fmt(asInjected.settled.rssMb / floor.rssMb, 2)}× bare node, ${fmt(asInjected.settled.rssMb / grpcFloor.rssMb, 2)}× node + grpc-js`),
        ...ceilings.map(([name, m]) => row(name, m)),
        '',
        `Simulated days of renewals: the agent's code in a child process (the JavaScript build, injected NODE_OPTIONS) on a clock stepped from timer to timer, against a real CA (token authentication, SQLite ledger) whose clock follows the agent's, with an Envoy-like SDS stream on its socket; ${fmt(AGENT_TTL_MS / HOUR_MS)} h certificates, root file polled every minute (${day.timersFired} timers fired). ` +
          `${day.renewals} renewals over ${last.hours} simulated hours took ${fmt(day.wallMs / 1000, 1)} s; the SDS stream received ${day.sdsPushes} pushes after its first response. Memory after two full GCs:`,
        '',
        '| agent process | RSS | PSS | private | heap used | heap total | external |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
        ...day.snapshots.map((m) => dayRow(m.hours === 0 ? 'after its first certificate' : `after ${m.hours} h (${m.renewals} renewals)`, m)),
        '',
        `Heap used ${fmt(first.heapUsedMb, 1)} → ${fmt(last.heapUsedMb, 1)} MB, RSS ${fmt(first.rssMb)} → ${fmt(last.rssMb)} MB over ${last.hours} h.`,
        '',
        `Load average while measuring: ${fmt(load0, 1)} → ${fmt(load1, 1)} (2 cores).`,
      ].join('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
