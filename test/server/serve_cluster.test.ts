// `meshca serve --workers 2` as real processes: issuances spread over both workers, every record in
// the primary's one chain (which `audit verify` accepts), /readyz ready only while every worker is,
// a killed worker restarted while issuance goes on, the ledger's failure refused as UNAVAILABLE,
// and SIGTERM draining the workers before the ledger closes.

import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadDevIssuer } from '../../src/authn/index.ts';
import { headAnchorPath, openLedger, readHeadAnchor, readLedgerPublicKey, type IssuanceEvent } from '../../src/ledger/index.ts';
import { createCsrPem, generateKeyPair } from '../../src/pki/index.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { startServeProcess, tempDir, type ServeProcess } from '../helpers/serve.ts';

const dir = tempDir();
const keysDir = join(dir.path, 'keys');
const dbPath = join(dir.path, 'ledger.db');
afterAll(() => dir.cleanup());

const CONNECTIONS = 8;

async function readyz(serve: ServeProcess): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://${serve.httpAddress}/readyz`);
  return { status: res.status, text: await res.text() };
}

/** Records the primary wrote for each worker, from the aggregated /metrics. */
async function recordsByWorker(serve: ServeProcess): Promise<number[]> {
  const text = await (await fetch(`http://${serve.httpAddress}/metrics`)).text();
  return [0, 1].map((rank) => Number(new RegExp(`^meshca_cluster_ledger_records_total\\{worker="${rank}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0));
}

/** The pid each "worker N ready" line named, newest last. */
function readyPids(serve: ServeProcess, rank: number): number[] {
  return serve.output().split('\n').filter((l) => l.includes(`"msg":"worker ${rank} ready"`)).map((l) => (JSON.parse(l) as { pid: number }).pid);
}

describe('meshca serve --workers 2', () => {
  it('spreads issuances over both workers into one verifiable chain, restarts a killed worker, and drains on SIGTERM', async () => {
    const serve = await startServeProcess(['--keys', keysDir, '--db', `sqlite:${dbPath}`, '--workers', '2', '--shutdown-grace', '5s']);
    const rootPem = readFileSync(join(keysDir, 'root-cert.pem'), 'utf8');
    const dev = await loadDevIssuer(keysDir, false);
    const token = await dev.mint({ namespace: 'default', serviceAccount: 'web', audience: 'meshca', ttlMs: 600_000, nowMs: Date.now() });
    const csr = createCsrPem(generateKeyPair('ec-p256').privateKey);
    let clients: CaClient[] = [];
    const connect = (from: number) => {
      for (const c of clients) c.close();
      clients = Array.from({ length: CONNECTIONS }, (_, i) => new CaClient({ address: serve.grpcAddress, rootPem, serverName: 'localhost', connection: from + i }));
    };
    const burst = (n: number) => Promise.allSettled(Array.from({ length: n }, (_, i) => clients[i % CONNECTIONS]!.createCertificate({ csr, token })));
    /** Why each refused call of a burst was refused (none should be). */
    const refusals = (results: PromiseSettledResult<unknown>[]) => results.flatMap((r) => (r.status === 'rejected' ? [`${(r.reason as ServiceError).code}: ${(r.reason as ServiceError).details}`] : []));
    /** A burst of `n` that must all be issued, and the records it added for each worker. */
    const recordedBurst = async (n: number) => {
      const before = await recordsByWorker(serve);
      expect(refusals(await burst(n))).toEqual([]);
      const after = await recordsByWorker(serve);
      return after.map((records, rank) => records - before[rank]!);
    };
    try {
      const listening = JSON.parse(serve.output().split('\n').find((l) => l.includes('meshca serve listening'))!) as { pids: number[]; workers: number };
      expect(listening.workers).toBe(2);
      expect(new Set(listening.pids).size).toBe(2);
      expect(await readyz(serve)).toEqual({ status: 200, text: 'ready\n' });

      // Connections are dealt to the workers in turn: both issue, and the primary records for both.
      connect(0);
      const first = await recordedBurst(80);
      expect(first[0]).toBeGreaterThan(0);
      expect(first[1]).toBeGreaterThan(0);
      expect(first[0]! + first[1]!).toBe(80);
      // Counters are summed over the workers, not one worker's sample.
      const metrics = await (await fetch(`http://${serve.httpAddress}/metrics`)).text();
      expect(Number(/^meshca_issuances_total\{outcome="OK"\} (\d+)$/m.exec(metrics)?.[1])).toBe(80);

      // A worker that does not answer makes the whole server not ready, by name; it recovers with it.
      const [pid0, pid1] = listening.pids as [number, number];
      process.kill(pid1, 'SIGSTOP');
      try {
        const stalled = await readyz(serve);
        expect(stalled.status).toBe(503);
        expect(stalled.text).toBe('not ready\nworker-1\n');
      } finally {
        process.kill(pid1, 'SIGCONT');
      }
      expect((await readyz(serve)).status).toBe(200);

      // Killed: restarted with a new pid, and both workers issue again.
      process.kill(pid1, 'SIGKILL');
      await vi.waitFor(() => expect(readyPids(serve, 1).at(-1)).not.toBe(pid1), { timeout: 8_000, interval: 50 });
      expect(serve.output()).toMatch(/"msg":"worker 1 exited; restarting it in 100 ms"/);
      expect(readyPids(serve, 0)).toEqual([pid0]);
      expect(await readyz(serve)).toEqual({ status: 200, text: 'ready\n' });
      connect(100);
      const second = await recordedBurst(40);
      expect(second[1]).toBeGreaterThan(0);
      expect(second[0]).toBeGreaterThan(0);

      // The primary's ledger cannot record: the workers refuse issuance (UNAVAILABLE) and /readyz says so.
      renameSync(dbPath, `${dbPath}.away`);
      try {
        await expect(clients[0]!.createCertificate({ csr, token })).rejects.toMatchObject({ code: status.UNAVAILABLE });
        const notReady = await readyz(serve);
        expect(notReady.status).toBe(503);
        expect(notReady.text).toMatch(/^not ready\nledger\n/);
      } finally {
        renameSync(`${dbPath}.away`, dbPath);
      }
      expect(await readyz(serve)).toEqual({ status: 200, text: 'ready\n' });
      await clients[1]!.createCertificate({ csr, token });

      // SIGTERM with requests in flight: each is answered with its record or refused, never lost.
      const inFlight = Array.from({ length: 200 }, (_, i) => clients[i % CONNECTIONS]!.createCertificate({ csr, token }));
      await Promise.any(inFlight);
      serve.child.kill('SIGTERM');
      const results = await Promise.allSettled(inFlight);
      expect(await serve.exited).toBe(0);
      const failed = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as ServiceError).code] : []));
      expect(failed.filter((code) => code !== status.UNAVAILABLE)).toEqual([]);
      expect(results.length - failed.length).toBeGreaterThan(0);
      expect(serve.output()).toMatch(/"worker":0,.*"msg":"stopped"/);
      expect(serve.output()).toMatch(/"worker":1,.*"msg":"stopped"/);

      // One chain with every record, from both workers, verified as `audit verify` does (bound to the CA, its anchor held); the primary's stop record last.
      const publicKey = readLedgerPublicKey(keysDir)!;
      const ledger = await openLedger(`sqlite:${dbPath}`, { bindTo: keysDir, mustExist: true, verifyKeys: [publicKey] });
      try {
        const anchorFile = headAnchorPath(keysDir);
        const report = await ledger.verify({ anchor: readHeadAnchor(anchorFile, publicKey)!, file: anchorFile });
        expect(report).toMatchObject({ ok: true, problems: [], signaturesChecked: true, uncoveredRecords: 0, anchoredHead: { held: true } });
        const records = await ledger.query({ order: 'asc', limit: 10_000 });
        expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
        const issued = records.filter((r) => r.event.type === 'issuance' && (r.event as IssuanceEvent).channel === 'CreateCertificate' && r.event.decision === 'granted');
        // 80 + 40 + 1 before SIGTERM, then every one answered while draining: none answered without its record.
        expect(issued).toHaveLength(80 + 40 + 1 + (results.length - failed.length));
        const starts = records.filter((r) => r.event.type === 'ca' && r.event.event === 'server-start');
        expect(starts).toHaveLength(1);
        expect(starts[0]!.event).toMatchObject({ detail: { workers: 2 } });
        expect(records.at(-1)!.event).toMatchObject({ type: 'ca', event: 'server-stop' });
      } finally {
        await ledger.close();
      }
    } finally {
      for (const c of clients) c.close();
      serve.child.kill('SIGKILL');
    }
    // Four real process start-ups (the primary, two workers, a restarted worker): ~6 s on an idle machine, several times that under a loaded full suite.
  }, 60_000);
});
