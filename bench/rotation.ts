// The rotation proof at scale: `meshca serve` in its own process, 200 agents (10-second
// certificates, each on its own SDS socket) and 100 TLS pairs handshaking continuously with the
// agents' SDS secrets while the root is prepared, activated, the intermediate rotated and the old
// root retired. Reports handshakes/s and failed handshakes (must be 0).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { memoryLedger } from '../src/ledger/index.ts';
import { activateRoot, DirectoryKeyStore, prepareRoot, retireRoot, rotateIntermediate, rotationPolicy, type RotationContext } from '../src/rotation/index.ts';
import { systemClock } from '../src/time/index.ts';
import { startServeProcess } from '../test/helpers/serve.ts';
import { startHandshakes, startMeshAgent, type MeshAgent } from '../test/rotation/mesh.ts';
import { fmt, writeSection } from './report.ts';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 200);
const LOOPS_PER_PAIR = Number(process.env.BENCH_LOOPS ?? 4);
const TTL_MS = 10_000;
const RELOAD_MS = 1_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-bench-rotation-'));
  const keys = join(dir, 'keys');
  await main(['ca', 'init', '--keys', keys], { stdout: () => {} });
  const serve = await startServeProcess(['--keys', keys, '--db', 'memory:', '--max-ttl', '10s', '--default-ttl', '10s', '--keys-poll', '200ms']);
  const agents: MeshAgent[] = [];
  try {
    const rootFile = join(keys, 'rotation-bench-root.pem');
    await import('node:fs').then((fs) => fs.copyFileSync(join(keys, 'root-cert.pem'), rootFile));
    for (let i = 0; i < AGENTS; i++) agents.push(await startMeshAgent({ index: i, dir, keysDir: keys, caAddress: serve.grpcAddress, rootCertPath: rootFile, ttlMs: TTL_MS }));
    await Promise.all(agents.map((a) => a.ready));
    const mesh = await startHandshakes(agents, LOOPS_PER_PAIR);
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
    const started = performance.now();
    const phases: string[] = [];
    const mark = (name: string) => phases.push(`${name} at ${((performance.now() - started) / 1000).toFixed(1)} s`);
    try {
      await sleep(2000);
      const prepared = await prepareRoot(ctx, { keyType: 'ec-p256' });
      mark('prepare');
      await sleep(Date.parse(prepared.activationAllowedAt) - Date.now() + 100);
      await activateRoot(ctx, { force: false });
      mark('activate');
      const activatedAt = Date.now();
      await sleep(3000);
      await rotateIntermediate(ctx, { keyType: 'ec-p256', now: true });
      mark('intermediate rotation');
      await sleep(activatedAt + RELOAD_MS + TTL_MS - Date.now() + 300);
      await retireRoot(ctx, { force: false });
      mark('retire');
      await sleep(TTL_MS * 0.6 + 1000);
    } finally {
      await mesh.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    const onNewRootOnly = agents.filter((a) => (a.secrets!.bundlePem.match(/BEGIN CERTIFICATE/g) ?? []).length === 1 && a.secrets!.bundlePem === readFileSync(join(keys, 'root-cert.pem'), 'utf8')).length;
    writeSection(
      'rotation',
      [
        '## Root rotation under load',
        '',
        `\`meshca serve\` in its own process (10-second certificates, key store polled every 200 ms); ${AGENTS} in-process agents, each on its own SDS Unix socket, ` +
          `and ${AGENTS / 2} node:tls server/client pairs (${LOOPS_PER_PAIR} connections at a time each) doing full mutual-TLS handshakes with the agents' current SDS secrets, ` +
          `each side checking the peer's SPIFFE ID against its ROOTCA, through a whole rotation: ${phases.join(', ')}, end at ${seconds.toFixed(1)} s. ` +
          'Everything shares the machine’s two cores.',
        '',
        '| agents | handshakes | handshakes/s | failed handshakes | agents on the new root only at the end |',
        '| ---: | ---: | ---: | ---: | ---: |',
        `| ${AGENTS} | ${fmt(mesh.stats.ok)} | ${fmt(mesh.stats.ok / seconds)} | ${mesh.stats.failed} | ${onNewRootOnly} / ${AGENTS} |`,
        ...(mesh.stats.failures.length > 0 ? ['', `First failures: ${mesh.stats.failures.slice(0, 3).join('; ')} (server side: ${mesh.stats.serverErrors.slice(0, 3).join('; ')})`] : []),
      ].join('\n'),
    );
    if (mesh.stats.failed > 0) process.exitCode = 1;
  } finally {
    await Promise.all(agents.map((a) => a.close()));
    serve.child.kill('SIGTERM');
    await serve.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}
