// PostgreSQL ledger appends/s with 1, 2 and 4 CA processes sharing one ledger (one hash chain,
// serialized by a transaction-scoped advisory lock), for docs/scaling.md. Needs
// MESHCA_TEST_POSTGRES_URL (`source .ci/postgres.sh` starts a throwaway server); skipped without.

import { fork, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openLedger } from '../src/ledger/index.ts';
import { loadAverage } from './procs.ts';
import { fmt, writeSection } from './report.ts';

const DURATION_MS = Number(process.env.BENCH_SECONDS ?? 5) * 1000;
const IN_FLIGHT = 64;
const REPLICAS = [1, 2, 4];

function message<T>(child: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (m: Record<string, unknown>) => {
      if (m.error) reject(new Error(String(m.error)));
      else if (key in m) {
        child.off('message', on);
        resolve(m[key] as T);
      }
    };
    child.on('message', on);
  });
}

/** A ledger URL on an empty schema of its own (dropped and made again), so runs never meet another CA's ledger. */
export async function freshSchemaUrl(base: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: base });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
  await client.query(`CREATE SCHEMA ${name}`);
  await client.end();
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${name}`);
  return url.toString();
}

async function runReplicas(url: string, keysDir: string, dir: string, replicas: number): Promise<{ rate: number; errors: number; cpuPerAppendUs: number }> {
  const children = Array.from({ length: replicas }, () => fork(new URL('./scaling_worker.ts', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  try {
    await Promise.all(
      children.map((child, replica) => {
        const own = join(dir, `keys-${replicas}-${replica}`);
        cpSync(keysDir, own, { recursive: true });
        child.send({ url, keysDir: own, inFlight: IN_FLIGHT, durationMs: DURATION_MS, replica: replicas * 10 + replica });
        return message<boolean>(child, 'ready');
      }),
    );
    const done = children.map(
      (child) =>
        new Promise<{ appended: number; errors: number; seconds: number; cpu: NodeJS.CpuUsage }>((resolve, reject) => {
          child.on('message', (m: Record<string, unknown>) => {
            if (m.error) reject(new Error(String(m.error)));
            else if ('appended' in m) resolve(m as never);
          });
        }),
    );
    for (const child of children) child.send({ go: true });
    const out = await Promise.all(done);
    const appended = out.reduce((a, r) => a + r.appended, 0);
    const seconds = Math.max(...out.map((r) => r.seconds));
    const cpu = out.reduce((a, r) => a + r.cpu.user + r.cpu.system, 0);
    return { rate: appended / seconds, errors: out.reduce((a, r) => a + r.errors, 0), cpuPerAppendUs: cpu / appended };
  } finally {
    for (const child of children) child.kill();
  }
}

export async function run(): Promise<void> {
  const base = process.env.MESHCA_TEST_POSTGRES_URL;
  if (!base) {
    process.stdout.write('  scaling: MESHCA_TEST_POSTGRES_URL is not set (source .ci/postgres.sh); skipped\n');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'meshca-bench-scaling-'));
  try {
    const rows: string[] = [];
    for (const replicas of REPLICAS) {
      const url = await freshSchemaUrl(base, `bench_scaling_${replicas}`);
      const keysDir = join(dir, `keys-${replicas}`);
      // Bind the ledger to one CA's ledger key first, as the first replica to start would.
      const first = await openLedger(url, { keysDir });
      await first.close();
      const load = loadAverage();
      process.stdout.write(`  ${replicas} CA process(es) × ${IN_FLIGHT} appends in flight… `);
      const r = await runReplicas(url, keysDir, dir, replicas);
      const check = await openLedger(url);
      const report = await check.verify();
      await check.close();
      process.stdout.write(`${fmt(r.rate)}/s, chain ${report.ok ? 'verifies' : 'BROKEN'} (${fmt(report.records)} records)\n`);
      rows.push(`| ${replicas} | ${fmt(r.rate)} | ${fmt(r.cpuPerAppendUs)} µs | ${r.errors} | ${report.ok ? `one chain, ${fmt(report.records)} records, verifies` : '**broken**'} | ${fmt(load, 1)} |`);
    }
    writeSection(
      'scaling',
      [
        '## PostgreSQL ledger with several CA processes',
        '',
        `Each CA process (a Node child, as a \`serve\` replica) opens the same PostgreSQL ledger with its own copy of the CA key directory and appends issuance records, ${IN_FLIGHT} at a time, for ${DURATION_MS / 1000} s. ` +
          'Appends from all processes form one hash chain: each transaction takes the ledger\u2019s advisory lock, so commits are serialized across processes (group commit batches a process\u2019s concurrent appends into one transaction). ' +
          'PostgreSQL runs on the same 2 cores. The chain is verified afterwards.',
        '',
        '| CA processes | appends/s (all together) | client CPU per append | errors | chain | load avg |',
        '| ---: | ---: | ---: | ---: | --- | ---: |',
        ...rows,
      ].join('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
