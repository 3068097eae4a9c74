// Drives the rotation benchmark's TLS pairs in worker threads (node:tls handshakes run on the
// thread that owns the socket, so one thread tops out at one core): starts them, tags phases,
// samples counts and merges the stats. Also the calibration: the same pairs with fixed
// certificates from the same kind of chain, no CA and no agents running.

import { Worker } from 'node:worker_threads';
import { createIntermediateCa, createLocalSigner, createRootCa, generateKeyPair, issueSvid, keyAlgorithmOf, loadSigningAuthority, toPem } from '../src/pki/index.ts';
import { newHandshakeStats, type HandshakeStats } from '../test/rotation/mesh.ts';
import { cpuSample, describeCpu } from './rotation_cpu.ts';

export interface Endpoint {
  readonly spiffeId: string;
  /** Follow this agent's SDS socket… */
  readonly sdsSocket?: string;
  /** …or hold these secrets for the whole run (calibration). */
  readonly fixed?: { chainPem: string; privateKeyPem: string; bundlePem: string };
}

export interface WorkerSetup {
  readonly endpoints: readonly Endpoint[];
  readonly loopsPerPair: number;
  readonly firstPair: number;
  /** Nice value for the worker's own thread (0: leave it). */
  readonly nice: number;
}

export type ToWorker = { type: 'start' } | { type: 'phase'; phase: string } | { type: 'count' } | { type: 'stop' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'started' }
  | { type: 'count'; ok: number; failed: number; cpuUs: number }
  | { type: 'stopped'; stats: HandshakeStats };

export interface HandshakeWorkers {
  /** Starts handshaking in every worker; resolves when all have started. */
  start(): Promise<void>;
  setPhase(phase: string): void;
  /** Handshakes so far and the CPU time (µs) of the threads running them, summed over the workers. */
  count(): Promise<{ ok: number; failed: number; cpuUs: number }>;
  /** Stops every pair and returns the merged stats. */
  stop(): Promise<HandshakeStats>;
}

const WORKER_URL = new URL('./rotation_worker.ts', import.meta.url);

/** The worker's next message of this type; rejects if the worker fails or exits before sending it. */
function nextMessage<T extends FromWorker['type']>(w: Worker, type: T): Promise<Extract<FromWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const done = () => {
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
    };
    const onMessage = (m: FromWorker) => {
      if (m.type !== type) return;
      done();
      resolve(m as Extract<FromWorker, { type: T }>);
    };
    const onError = (err: Error) => (done(), reject(err));
    const onExit = (code: number) => (done(), reject(new Error(`a handshake worker exited (code ${code}) before sending '${type}'`)));
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
  });
}

/**
 * Splits the endpoints (pairs 0-1, 2-3, …) over `workers` threads; resolves once every proxy holds
 * its first secrets.
 */
export async function startHandshakeWorkers(endpoints: readonly Endpoint[], opts: { workers: number; loopsPerPair: number; nice?: number }): Promise<HandshakeWorkers> {
  const pairs = Math.floor(endpoints.length / 2);
  const threads: Worker[] = [];
  let firstPair = 0;
  for (let i = 0; i < opts.workers; i++) {
    const lastPair = Math.round(((i + 1) * pairs) / opts.workers);
    const setup: WorkerSetup = { endpoints: endpoints.slice(firstPair * 2, lastPair * 2), loopsPerPair: opts.loopsPerPair, firstPair, nice: opts.nice ?? 0 };
    threads.push(new Worker(WORKER_URL, { workerData: setup }));
    firstPair = lastPair;
  }
  await Promise.all(threads.map((w) => nextMessage(w, 'ready')));
  const post = (m: ToWorker) => threads.forEach((w) => w.postMessage(m));
  return {
    async start() {
      const started = threads.map((w) => nextMessage(w, 'started'));
      post({ type: 'start' });
      await Promise.all(started);
    },
    setPhase: (phase) => post({ type: 'phase', phase }),
    async count() {
      const counts = threads.map((w) => nextMessage(w, 'count'));
      post({ type: 'count' });
      return (await Promise.all(counts)).reduce((a, c) => ({ ok: a.ok + c.ok, failed: a.failed + c.failed, cpuUs: a.cpuUs + c.cpuUs }), { ok: 0, failed: 0, cpuUs: 0 });
    },
    async stop() {
      const stopped = threads.map((w) => nextMessage(w, 'stopped'));
      post({ type: 'stop' });
      const all = (await Promise.all(stopped)).map((m) => m.stats);
      await Promise.all(threads.map((w) => w.terminate()));
      const merged = newHandshakeStats();
      for (const s of all) {
        merged.ok += s.ok;
        merged.failed += s.failed;
        merged.failures.push(...s.failures);
        merged.details.push(...s.details);
        merged.serverErrors.push(...s.serverErrors);
        for (const [k, n] of Object.entries(s.byReason)) merged.byReason[k] = (merged.byReason[k] ?? 0) + n;
      }
      merged.details.sort((a, b) => a.atMs - b.atMs);
      return merged;
    },
  };
}

/**
 * Endpoints with fixed secrets of the same shape the CA issues (ECDSA P-256 leaf with a SPIFFE ID,
 * P-256 intermediate, P-256 root), valid for an hour: the calibration needs no CA.
 */
export async function calibrationEndpoints(count: number, trustDomain = 'cluster.local'): Promise<Endpoint[]> {
  const nowMs = Date.now();
  const base = { trustDomain, organization: 'meshca bench', keyType: 'ec-p256' as const, nowMs };
  const root = await createRootCa({ ...base, ttlMs: 86_400_000 });
  const inter = await createIntermediateCa({ ...base, ttlMs: 3_600_000, rootCertificateDer: root.certificateDer, rootSigner: createLocalSigner(root.privateKey), rootNotAfterMs: nowMs + 86_400_000 });
  const rootPem = toPem(root.certificateDer, 'CERTIFICATE');
  const interPem = toPem(inter.certificateDer, 'CERTIFICATE');
  const authority = loadSigningAuthority({ chainPem: interPem, rootsPem: rootPem, signer: createLocalSigner(inter.privateKey), nowMs });
  const endpoints: Endpoint[] = [];
  for (let i = 0; i < count; i++) {
    const spiffeId = `spiffe://${trustDomain}/ns/mesh/sa/svc-${i}`;
    const { privateKey, publicKey } = generateKeyPair('ec-p256');
    const leaf = await issueSvid(authority, spiffeId, { spkiDer: publicKey.export({ format: 'der', type: 'spki' }), keyAlgorithm: keyAlgorithmOf(publicKey), ttlMs: 3_600_000, nowMs });
    endpoints.push({ spiffeId, fixed: { chainPem: leaf.pem + interPem, privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, bundlePem: rootPem } });
  }
  return endpoints;
}

/** Full mutual-TLS handshakes/s the same worker setup does with fixed certificates, and where the CPU went. */
export async function measureCalibration(
  endpoints: readonly Endpoint[],
  opts: { workers: number; loopsPerPair: number; nice?: number; warmupMs: number; durationMs: number },
): Promise<{ rate: number; stats: HandshakeStats; cpu: string; workerCores: number }> {
  const w = await startHandshakeWorkers(endpoints, opts);
  await w.start();
  await new Promise((r) => setTimeout(r, opts.warmupMs));
  const from = await w.count();
  const cpuFrom = cpuSample(from.cpuUs, undefined);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, opts.durationMs));
  const to = await w.count();
  const cpuTo = cpuSample(to.cpuUs, undefined);
  const seconds = (performance.now() - t0) / 1000;
  const stats = await w.stop();
  return { rate: (to.ok - from.ok) / seconds, stats, cpu: describeCpu(cpuFrom, cpuTo), workerCores: (to.cpuUs - from.cpuUs) / 1e6 / seconds };
}
