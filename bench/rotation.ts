// The rotation proof at scale: `meshca serve` in its own process, 200 agents (10-second
// certificates, each on its own SDS socket) and 100 TLS pairs in worker threads handshaking
// continuously with the agents' SDS secrets while the root is prepared, activated, the intermediate
// rotated and the old root retired. Reports handshakes/s against a calibration run (the same pairs
// with fixed certificates, no CA, no agents), and every failed handshake with its cause (must be 0).

import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { memoryLedger } from '../src/ledger/index.ts';
import { activateRoot, DirectoryKeyStore, prepareRoot, retireRoot, rotateIntermediate, rotationPolicy, type RotationContext } from '../src/rotation/index.ts';
import { systemClock } from '../src/time/index.ts';
import { startServeProcess } from '../test/helpers/serve.ts';
import { rootLabel, startHandshakes, startMeshAgent, type HandshakeFailure, type HandshakeStats, type MeshAgent } from '../test/rotation/mesh.ts';
import { fmt, writeSection } from './report.ts';
import { calibrationEndpoints, measureCalibration, startHandshakeWorkers, type HandshakeWorkers } from './rotation_handshakes.ts';
import { cpuSample, describeCpu, type CpuSample } from './rotation_cpu.ts';
import { rotationMargins, watchRenewals, type RenewalReport } from './rotation_renewals.ts';
import { pemBlocks } from '../test/helpers/csr.ts';
import { DEFAULT_MAX_CONNECTIONS_PER_PEER } from '../src/transport/index.ts';
import { cleanUp, within } from './deadline.ts';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 200);
const LOOPS_PER_PAIR = Number(process.env.BENCH_LOOPS ?? 2);
/** Threads running the TLS pairs; 0 runs them on the agents' thread (the old, overloaded set-up). */
const WORKERS = Number(process.env.BENCH_WORKERS ?? os.availableParallelism());
/** The handshake threads run at this nice value, so the agents and the CA they load never wait for them. */
const WORKER_NICE = Number(process.env.BENCH_WORKER_NICE ?? 10);
const CALIBRATION_MS = Number(process.env.BENCH_CALIBRATION_SECONDS ?? 8) * 1000;
const TTL_MS = 10_000;
const RELOAD_MS = 1_000;
/** The longest any one phase (start-up, a rotation step, a stop) may take before the bench fails, naming it. */
const PHASE_MS = Number(process.env.BENCH_PHASE_TIMEOUT_SECONDS ?? 60) * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** meshca serve's meshca_connections_refused_total by reason, read from its /metrics. */
async function refusedConnections(httpAddress: string): Promise<string> {
  const text = await (await fetch(`http://${httpAddress}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
  const counts = [...text.matchAll(/^meshca_connections_refused_total\{reason="([^"]+)"\} (\d+)/gm)].map((m) => `${m[2]} (${m[1]})`);
  return counts.length > 0 ? counts.join(', ') : '0';
}

/** Why agents have no certificate yet: how many, each one's last error, and the CA's refused connections. */
async function whyNotReady(agents: readonly MeshAgent[], httpAddress: string): Promise<string> {
  const waiting = agents.filter((a) => a.running.agent.current() === undefined);
  const errors = new Map<string, number>();
  for (const a of waiting) {
    const e = a.running.agent.status().lastError ?? 'no answer yet';
    errors.set(e, (errors.get(e) ?? 0) + 1);
  }
  const held = agents.length - waiting.length;
  const refused = await refusedConnections(httpAddress).catch((err: unknown) => `unknown (/metrics: ${err instanceof Error ? err.message : String(err)})`);
  return (
    `${held} / ${agents.length} agents hold a certificate` +
    (waiting.length > 0 ? `; the others' last errors: ${[...errors].map(([e, n]) => `${n} × ${e}`).join('; ')}` : ' (so their SDS proxies are what is waiting)') +
    `; connections meshca serve refused at its caps: ${refused}`
  );
}

/** The TLS pairs on the agents' own thread, behind the same interface as the workers. */
async function inProcessHandshakes(agents: readonly MeshAgent[]): Promise<HandshakeWorkers> {
  let mesh: Awaited<ReturnType<typeof startHandshakes>> | undefined;
  let phase = '';
  return {
    async start() {
      mesh = await startHandshakes(agents, LOOPS_PER_PAIR);
      mesh.setPhase(phase);
    },
    setPhase: (p) => ((phase = p), mesh?.setPhase(p)),
    // Their CPU is the agents' thread's, counted there.
    count: async () => ({ ok: mesh?.stats.ok ?? 0, failed: mesh?.stats.failed ?? 0, cpuUs: 0 }),
    async stop() {
      await mesh!.stop();
      return mesh!.stats;
    },
  };
}

interface PhaseFigures {
  name: string;
  seconds: number;
  ok: number;
  failed: number;
}

/** Every agent serves a bundle of only the new root and a leaf whose chain ends at it. */
function onNewRootOnly(agents: readonly MeshAgent[], newRootPem: string): number {
  const newRoot = new X509Certificate(newRootPem);
  return agents.filter((a) => {
    const held = a.running.agent.current();
    if (!held) return false;
    const bundle = pemBlocks(held.bundlePem);
    const chain = pemBlocks(held.chainPem).map((p) => new X509Certificate(p));
    const top = chain[chain.length - 1]!;
    return bundle.length === 1 && new X509Certificate(bundle[0]!).fingerprint256 === newRoot.fingerprint256 && top.checkIssued(newRoot) && top.verify(newRoot.publicKey);
  }).length;
}

function describeRenewals(r: RenewalReport): string {
  const reasons = [...r.failureReasons].map(([why, n]) => `${n} × ${why}`).join('; ');
  return (
    `${fmt(r.renewals.length)} renewals; due → served: median ${fmt(r.lateMs.p50)} ms, p99 ${fmt(r.lateMs.p99)} ms, max ${fmt(r.lateMs.max)} ms ` +
    `(sampled every 100 ms); least life left on a certificate when its successor arrived: ${fmt(r.minLeftAtRenewalMs / 1000, 1)} s; ` +
    `samples of an agent serving an expired certificate: ${r.expiredSamples}; failed renewal attempts: ${r.failedAttempts}${reasons ? ` (${reasons})` : ''}; ` +
    `event-loop delay of the agents' thread: p99 ${fmt(r.loopDelayMs.p99)} ms, max ${fmt(r.loopDelayMs.max)} ms`
  );
}

/**
 * Why a handshake failed, in the terms that matter: an expired certificate whose agent renewed late
 * (the machine starved the agents or the CA: 10-second certificates leave ~5 s of slack), an expired
 * certificate although its agent renewed on time (the proxy missed the push), a trust failure (a
 * bundle without the signer's root: a rotation bug), the wrong identity, or a transport problem.
 */
function classify(d: HandshakeFailure, renewals: RenewalReport): string {
  if (/EXPIRED/.test(d.reason)) {
    // The refused certificate is the client's when the server refused, else the server's.
    const agent = d.refusedBy === 'server' ? 2 * d.pair + 1 : 2 * d.pair;
    const next = renewals.renewals.find((r) => r.agent === agent && r.atMs >= d.atMs - 1000);
    if (next && next.lateMs > 1000) return `certificate expired: its agent's renewal arrived ${fmt(next.lateMs / 1000, 1)} s late (starved of CPU)`;
    return 'certificate expired although its agent renewed on time';
  }
  if (/ISSUER|LEAF_SIGNATURE|SIGNATURE_FAILURE|SELF_SIGNED|UNTRUSTED|CHAIN/.test(d.reason)) return `trust: ${d.reason}`;
  if (/instead of/.test(d.reason)) return 'wrong identity';
  return `other: ${d.reason}`;
}

function failureLines(stats: HandshakeStats, startedAtMs: number, roots: Map<string, string>, renewals: RenewalReport): string[] {
  if (stats.failed === 0) return [];
  const name = (text: string) => [...roots].reduce((t, [label, what]) => t.replaceAll(label, `${label} (${what})`), text);
  const byCause = new Map<string, number>();
  for (const d of stats.details) {
    const c = classify(d, renewals).replace(/arrived [\d.]+ s late/, 'arrived late');
    byCause.set(c, (byCause.get(c) ?? 0) + 1);
  }
  const all = Object.entries(stats.byReason);
  const expired = all.filter(([k]) => /EXPIRED/.test(k)).reduce((s, [, n]) => s + n, 0);
  return [
    '',
    `Failed handshakes: ${stats.failed}, of which ${expired} on an expired certificate and ${stats.failed - expired} for any other reason (${all
      .filter(([k]) => !/EXPIRED/.test(k))
      .map(([k, n]) => `${n} × ${k}`)
      .join('; ') || 'none'}). ` + `The first ${stats.details.length}, with the agents' renewals: ${[...byCause].map(([c, n]) => `${n} × ${c}`).join('; ')}.`,
    '',
    ...stats.details
      .slice(0, 12)
      .map((d) => `- ${((d.atMs - startedAtMs) / 1000).toFixed(1)} s, ${d.phase}, pair ${d.pair}: refused by ${d.refusedBy}: ${d.reason} — ${classify(d, renewals)}. Client held ${name(d.client)}. Server held ${name(d.server)}.`),
  ];
}

export async function run(): Promise<void> {
  // The machine's own limit first, while nothing else runs: same pairs, fixed certificates.
  const calibration =
    WORKERS > 0
      ? await within(
          'the calibration run',
          PHASE_MS + 2000 + CALIBRATION_MS,
          measureCalibration(await calibrationEndpoints(AGENTS), { workers: WORKERS, loopsPerPair: LOOPS_PER_PAIR, nice: WORKER_NICE, warmupMs: 2000, durationMs: CALIBRATION_MS }),
        )
      : undefined;

  const dir = mkdtempSync(join(tmpdir(), 'meshca-bench-rotation-'));
  const keys = join(dir, 'keys');
  await main(['ca', 'init', '--keys', keys], { stdout: () => {} });
  const oldRootPem = readFileSync(join(keys, 'root-cert.pem'), 'utf8');
  const serve = await startServeProcess(['--keys', keys, '--db', 'memory:', '--max-ttl', '10s', '--default-ttl', '10s', '--keys-poll', '200ms',
    // The bench's CA certificates live a day (root) and an hour (intermediate): no expiry warnings for those.
    '--root-expiry-warning', '1h', '--ca-expiry-warning', '10m',
    // Every agent here dials from 127.0.0.1 and holds one connection; in a cluster each is its own
    // pod's address. The default cap (64 per address) would silently close the rest on accept and
    // leave them retrying forever.
    '--max-connections-per-peer', String(AGENTS + DEFAULT_MAX_CONNECTIONS_PER_PEER)]);
  // The helper keeps every log line and re-scans them all on each chunk; the bench would spend a
  // growing share of its agents' thread on that. Keep only warnings and errors.
  const serveWarnings: string[] = [];
  for (const stream of [serve.child.stdout!, serve.child.stderr!]) {
    stream.removeAllListeners('data');
    stream.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (/"level":"(warn|error|fatal)"/.test(line) && serveWarnings.length < 20) serveWarnings.push(line.slice(0, 300));
    });
  }
  const agents: MeshAgent[] = [];
  let failed = false;
  try {
    const rootFile = join(keys, 'rotation-bench-root.pem');
    copyFileSync(join(keys, 'root-cert.pem'), rootFile);
    for (let i = 0; i < AGENTS; i++) {
      agents.push(await within(`starting agent ${i}`, PHASE_MS, startMeshAgent({ index: i, dir, keysDir: keys, caAddress: serve.grpcAddress, rootCertPath: rootFile, ttlMs: TTL_MS, watch: WORKERS === 0 })));
    }
    await within(`the ${AGENTS} agents' first certificates`, PHASE_MS, Promise.all(agents.map((a) => a.ready)), () => whyNotReady(agents, serve.httpAddress));
    const mesh = await within(
      'starting the handshake workers (each SDS proxy waits for its first secrets)',
      PHASE_MS,
      WORKERS > 0 ? startHandshakeWorkers(agents.map((a) => ({ spiffeId: a.spiffeId, sdsSocket: a.sdsSocket })), { workers: WORKERS, loopsPerPair: LOOPS_PER_PAIR, nice: WORKER_NICE }) : inProcessHandshakes(agents),
      () => whyNotReady(agents, serve.httpAddress),
    );
    const ctx: RotationContext = {
      store: new DirectoryKeyStore(keys),
      clock: systemClock,
      policy: rotationPolicy(TTL_MS, RELOAD_MS),
      ledger: memoryLedger(),
      actor: 'bench',
      organization: 'meshca bench',
      rootTtlMs: 86_400_000,
      caTtlMs: 3_600_000,
      trustDomain: 'cluster.local',
    };
    const renewals = watchRenewals(agents);
    const phases: PhaseFigures[] = [];
    mesh.setPhase('before prepare');
    await within('starting the TLS pairs', PHASE_MS, mesh.start());
    const count = (when: string) => within(`counting handshakes (${when})`, PHASE_MS, mesh.count());
    const startedAtMs = Date.now();
    const started = performance.now();
    let phase = { name: 'before prepare', at: started, ...(await count('at the start')) };
    const cpuFrom = cpuSample(phase.cpuUs, serve.child.pid);
    // BENCH_TIMELINE=1: one line a second on stdout (handshakes, CPU, agents' loop delay), to see a stall as it happens.
    const timeline: string[] = [];
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    let prevSample = cpuFrom;
    let prevOk = 0;
    const ticker = process.env.BENCH_TIMELINE
      ? setInterval(() => {
          void mesh.count().then((c) => {
            const cur = cpuSample(c.cpuUs, serve.child.pid);
            const s = (cur.atMs - prevSample.atMs) / 1000;
            const share = (a: number, b: number) => fmt((b - a) / 1e6 / s, 2);
            timeline.push(
              `${fmt((cur.atMs - started) / 1000, 1)} s ${phase.name}: ${fmt((c.ok - prevOk) / s)} hs/s, failed ${c.failed}; cores: workers ${share(prevSample.workersUs, cur.workersUs)} ` +
                `agents ${share(prevSample.agentsUs, cur.agentsUs)} serve ${share(prevSample.serveUs, cur.serveUs)} machine ${share(prevSample.machineBusyUs, cur.machineBusyUs)}; agents' loop delay max ${fmt(loopDelay.max / 1e6)} ms`,
            );
            process.stdout.write(`${timeline[timeline.length - 1]}\n`);
            loopDelay.reset();
            prevSample = cur;
            prevOk = c.ok;
          });
        }, 1000)
      : undefined;
    const mark = async (name: string) => {
      const now = performance.now();
      const c = await count(`at ${name || 'the end'}`);
      phases.push({ name: phase.name, seconds: (now - phase.at) / 1000, ok: c.ok - phase.ok, failed: c.failed - phase.failed });
      phase = { name, at: now, ...c };
      mesh.setPhase(name);
    };
    let stats: HandshakeStats;
    let cpuTo: CpuSample | undefined;
    let activatedAtMs = NaN;
    let retiredAtMs = NaN;
    let rotationFailed = false;
    try {
      await sleep(2000);
      const prepared = await within('root prepare', PHASE_MS, prepareRoot(ctx, { keyType: 'ec-p256' }));
      await mark('prepared → activate');
      // BENCH_FORCE_EARLY=1 activates at once (--force), to show what a rotation bug looks like here.
      const forceEarly = process.env.BENCH_FORCE_EARLY === '1';
      if (!forceEarly) await sleep(Date.parse(prepared.activationAllowedAt) - Date.now() + 100);
      await within('root activate', PHASE_MS, activateRoot(ctx, { force: forceEarly }));
      const activatedAt = Date.now();
      activatedAtMs = activatedAt;
      await mark('activated → intermediate rotation');
      await sleep(3000);
      await within('intermediate rotation', PHASE_MS, rotateIntermediate(ctx, { keyType: 'ec-p256', now: true }));
      await mark('intermediate rotated → retire');
      await sleep(activatedAt + RELOAD_MS + TTL_MS - Date.now() + 300);
      await within('root retire', PHASE_MS, retireRoot(ctx, { force: false }));
      retiredAtMs = Date.now();
      await mark('retired → end');
      await sleep(TTL_MS * 0.6 + 1000);
      await mark('');
      cpuTo = cpuSample((await count('the end')).cpuUs, serve.child.pid);
    } catch (err) {
      rotationFailed = true;
      throw err;
    } finally {
      clearInterval(ticker);
      loopDelay.disable();
      stats = (await cleanUp(rotationFailed, () => within('stopping the TLS pairs', PHASE_MS, mesh.stop())))!;
    }
    const renewalReport = renewals.stop();
    if (process.env.BENCH_TIMELINE) {
      for (let t = 0; t < (Date.now() - startedAtMs) / 1000; t++) {
        const done = renewalReport.renewals.filter((c) => c.atMs >= startedAtMs + t * 1000 && c.atMs < startedAtMs + (t + 1) * 1000);
        const fresh = done.filter((c) => c.newChannel);
        process.stdout.write(
          `renewals in second ${t}: ${done.length}, latest by ${fmt(Math.max(0, ...done.map((c) => c.lateMs)))} ms; on a new channel ${fresh.length}, latest by ${fmt(Math.max(0, ...fresh.map((c) => c.lateMs)))} ms\n`,
        );
      }
    }
    const seconds = phases.reduce((s, p) => s + p.seconds, 0);
    const total = { ok: phases.reduce((s, p) => s + p.ok, 0), failed: stats.failed };
    const newRootPem = readFileSync(join(keys, 'root-cert.pem'), 'utf8');
    const oldRoot = rootLabel(new X509Certificate(oldRootPem));
    const newRoot = rootLabel(new X509Certificate(newRootPem));
    const roots = new Map([
      [oldRoot, 'old root'],
      [newRoot, 'new root'],
    ]);
    const where = WORKERS > 0 ? `${WORKERS} worker threads` : 'the agents’ own thread';
    writeSection(
      'rotation',
      [
        '## Root rotation under load',
        '',
        `\`meshca serve\` in its own process (10-second certificates, key store polled every 200 ms, \`--max-connections-per-peer ${AGENTS + DEFAULT_MAX_CONNECTIONS_PER_PEER}\` since every agent dials it from 127.0.0.1); ` +
          `${AGENTS} agents in the bench's main thread, each on its own SDS Unix socket; ` +
          `${AGENTS / 2} node:tls server/client pairs (${LOOPS_PER_PAIR} connections at a time each) on ${where}${WORKERS > 0 && WORKER_NICE > 0 ? ` at nice ${WORKER_NICE} (the load generator yields to the agents and the CA it loads)` : ''}, each endpoint an Envoy-like SDS client of its agent's socket, ` +
          'doing full mutual-TLS 1.3 handshakes (a new TCP connection each, no session resumption) with the agents\' current secrets; ' +
          'both sides verify the peer chain against their ROOTCA and check the peer\'s SPIFFE ID, and a handshake counts only when the server confirmed the client. ' +
          'The rotation: prepare, activate once allowed, intermediate rotation 3 s later, retire once allowed. Everything shares the machine\'s two cores. ' +
          'A failed handshake is reported with the side that refused, OpenSSL\'s reason and what each side held; an expired certificate whose agent renewed late ' +
          '(10-second certificates leave about 5 s between renewal and expiry, which a starved machine can eat) is told apart from a trust failure, which would be a rotation bug. ' +
          'An earlier version ran the pairs on the agents\' own thread (BENCH_WORKERS=0 still does): that thread saturated, renewals finished up to seconds late, and under extra load on the machine ' +
          'client certificates expired before their successors arrived (CERT_HAS_EXPIRED, refused by the server; node\'s rejectUnauthorized had hidden the reason, leaving only a closed connection).',
        '',
        '| phase | seconds | handshakes | handshakes/s | failed |',
        '| --- | ---: | ---: | ---: | ---: |',
        ...phases.map((p) => `| ${p.name} | ${fmt(p.seconds, 1)} | ${fmt(p.ok)} | ${fmt(p.ok / p.seconds)} | ${p.failed} |`),
        `| **whole rotation** | ${fmt(seconds, 1)} | ${fmt(total.ok)} | **${fmt(total.ok / seconds)}** | **${total.failed}** |`,
        '',
        calibration
          ? `Calibration, a minute earlier on the same ${where}, pairs and certificate shapes (ECDSA P-256 leaf, intermediate and root) with fixed certificates, no CA and no agents: ` +
            `**${fmt(calibration.rate)} handshakes/s** (${calibration.stats.failed} failed; CPU: ${calibration.cpu.replace(/, agents' thread.*the bench's other/, ", the bench's other")}). ` +
            `Both ends of one handshake cost ${fmt((1000 * calibration.workerCores) / calibration.rate, 2)} ms of CPU, so this machine's ceiling for node:tls is about ` +
            `${fmt((os.availableParallelism() * calibration.rate) / calibration.workerCores)} handshakes/s with nothing else running; the rotation run reaches ` +
            `${fmt((100 * total.ok) / seconds / calibration.rate)}% of the calibration while the agents and the CA take their share of the same cores` +
            (cpuTo ? ` (${fmt((1000 * (cpuTo.workersUs - cpuFrom.workersUs)) / 1e6 / total.ok, 2)} ms of handshake-thread CPU per handshake).` : '.')
          : 'No calibration run (BENCH_WORKERS=0).',
        '',
        ...(cpuTo ? [`CPU during the rotation: ${describeCpu(cpuFrom, cpuTo)}.`, ''] : []),
        `Safety margins as the agents lived them: ${rotationMargins(renewalReport, AGENTS, { oldRoot, newRoot }, { activateMs: activatedAtMs, retireMs: retiredAtMs })}. ` +
          `At the end ${onNewRootOnly(agents, newRootPem)} / ${AGENTS} agents serve only the new root, with a leaf chaining to it.`,
        '',
        `Agents: ${describeRenewals(renewalReport)}.`,
        ...failureLines(stats, startedAtMs, roots, renewalReport),
        ...(serveWarnings.length > 0 ? ['', `meshca serve warned: ${serveWarnings.slice(0, 5).join(' / ')}`] : []),
      ].join('\n'),
    );
    if (total.failed > 0 || (calibration?.stats.failed ?? 0) > 0) process.exitCode = 1;
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await cleanUp(failed, () => within('stopping the agents', PHASE_MS, Promise.all(agents.map((a) => a.close()))));
    serve.child.kill('SIGTERM');
    await cleanUp(failed, () =>
      within('meshca serve exiting on SIGTERM', PHASE_MS, serve.exited).catch((err: unknown) => {
        serve.child.kill('SIGKILL');
        throw err;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}
