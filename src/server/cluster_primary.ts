// The primary of `meshca serve --workers N`: forks N workers that serve the gRPC port (node:cluster
// shares the listening socket), writes the one ledger all their records go to, serves the HTTP side
// port for all of them, and restarts a worker that dies. It answers no CA request itself. Fails
// closed: if any worker cannot start, everything started is stopped and the start fails.

import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { AggregatorRegistry, Counter, Gauge } from 'prom-client';
import { createBundleRoute } from '../distribution/index.ts';
import { isErrorCode, MeshcaError } from '../errors/index.ts';
import { answerLedgerRequest, startRetention, type Ledger } from '../ledger/index.ts';
import { createRegistry, type Logger } from '../observability/index.ts';
import type { Clock, Timer } from '../time/index.ts';
import { closeHttp, createHttpServer, listenHttp, type FailingCheck } from '../transport/index.ts';
import { isToPrimary, WORKER_RANK_ENV, type BundleReport, type MetricsJson, type ToPrimary, type ToWorker } from './cluster_protocol.ts';
import type { ServeConfig } from './config.ts';
import { openPrimaryLedger, type ContextDeps } from './context.ts';
import { ledgerReadiness } from './features.ts';
import { ledgerCheckpointAgeGauge } from './metrics.ts';
import { serverStartEvent, serverStopEvent } from './serve.ts';

/** A dead worker is restarted after this, doubling per failure in a row up to RESTART_MAX_MS. */
export const RESTART_MIN_MS = 100;
export const RESTART_MAX_MS = 10_000;
/** A worker that served this long before dying starts the backoff again from RESTART_MIN_MS. */
const RESTART_STABLE_MS = 30_000;
/** How long /readyz and /metrics wait for a worker's answer (a probe's own timeout is often 1 s). */
const ASK_TIMEOUT_MS = 800;
/** After the grace, workers still running are killed this much later. */
const KILL_AFTER_GRACE_MS = 5_000;

export interface ClusterPrimaryDeps extends ContextDeps {
  /** Aborted on SIGINT/SIGTERM: a start in progress stops and gives back what it started. */
  readonly signal?: AbortSignal;
}

export interface RunningCluster {
  readonly grpcAddress: string;
  readonly httpAddress: string;
  /** The workers' process ids by rank (a restarted worker has a new one). */
  pids(): readonly (number | undefined)[];
  /** Drains every worker (up to `graceMs`), then closes the side port and, last, the ledger. */
  close(graceMs?: number): Promise<void>;
}

interface Slot {
  readonly rank: number;
  worker?: Worker;
  pid?: number;
  ready: boolean;
  readySinceMs?: number;
  /** Deaths in a row (reset by serving RESTART_STABLE_MS), for the restart backoff. */
  failures: number;
  restart?: Timer;
  exited?: Promise<void>;
}

type Reply = Extract<ToPrimary, { t: 'readiness-reply' | 'metrics-reply' }>;

function primaryMetrics(registry: ReturnType<typeof createRegistry>) {
  return {
    records: new Counter({ name: 'meshca_cluster_ledger_records_total', help: 'Ledger records the primary wrote for each worker (--workers), by worker rank', labelNames: ['worker'], registers: [registry] }),
    restarts: new Counter({ name: 'meshca_cluster_worker_restarts_total', help: 'Workers restarted after they exited unasked (--workers)', registers: [registry] }),
    ready: new Gauge({ name: 'meshca_cluster_workers_ready', help: 'Workers serving the gRPC port (--workers)', registers: [registry] }),
  };
}

export async function startClusterPrimary(config: ServeConfig, deps: ClusterPrimaryDeps): Promise<RunningCluster> {
  const { clock, log, signal } = deps;
  signal?.throwIfAborted();
  const opened = await openPrimaryLedger(config, deps);
  const ledger: Ledger | undefined = opened.ledger;
  const registry = createRegistry();
  const metrics = primaryMetrics(registry);
  if (ledger) ledgerCheckpointAgeGauge(registry, clock, () => ledger.newestCheckpointTimeMs());
  const retention = ledger ? startRetention(ledger, config.retainMs, clock, log) : undefined;
  const slots: Slot[] = Array.from({ length: config.workers }, (_, rank) => ({ rank, ready: false, failures: 0 }));
  let bundle: BundleReport = { rootsPem: [], sequence: 0 };
  let grpcAddress = '';
  let keys = { issuerKeyId: '', rootKeyId: '' };
  let closing = false;
  let started = false;
  const instance = randomBytes(8).toString('hex');

  // Questions to workers (/readyz, /metrics), answered by id.
  let nextAsk = 1;
  const asked = new Map<number, (reply: Reply) => void>();
  const ask = <T extends Reply['t']>(slot: Slot, t: 'readiness' | 'metrics'): Promise<Extract<Reply, { t: T }> | undefined> =>
    new Promise((resolve) => {
      const id = nextAsk++;
      const timer = clock.setTimer(ASK_TIMEOUT_MS, () => {
        asked.delete(id);
        resolve(undefined);
      });
      asked.set(id, (reply) => {
        timer.cancel();
        asked.delete(id);
        resolve(reply as Extract<Reply, { t: T }>);
      });
      const ledgerHealth = ledger?.health();
      if (!sendTo(slot, t === 'readiness' && ledgerHealth !== undefined ? { t, id, ledgerHealth } : { t, id })) {
        timer.cancel();
        asked.delete(id);
        resolve(undefined);
      }
    });

  const sendTo = (slot: Slot, msg: ToWorker): boolean => {
    const w = slot.worker;
    if (!w || !w.isConnected()) return false;
    try {
      return w.send(msg);
    } catch {
      return false;
    }
  };

  // Start-up: resolves when every worker is ready, rejects when one fails or exits first.
  let startup: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  const allReady = new Promise<void>((resolve, reject) => (startup = { resolve, reject }));
  allReady.catch(() => undefined);

  const onMessage = (slot: Slot, worker: Worker, msg: ToPrimary): void => {
    switch (msg.t) {
      case 'ledger': {
        metrics.records.inc({ worker: String(slot.rank) }, msg.request.op === 'append' ? msg.request.events.length : 0);
        const answer = ledger
          ? answerLedgerRequest(ledger, msg.request)
          : Promise.resolve({ ok: false as const, code: 'LEDGER_UNAVAILABLE', message: 'the primary holds no ledger (--db memory:)' });
        void answer.then((reply) => {
          if (worker.isConnected()) worker.send({ t: 'ledger-reply', id: msg.id, reply } satisfies ToWorker);
        });
        return;
      }
      case 'ready':
        // A worker still loading when the shutdown was sent had no listener for it yet: ask again.
        if (closing) {
          sendTo(slot, { t: 'shutdown', graceMs: 0 });
          return;
        }
        slot.ready = true;
        slot.pid = msg.pid;
        slot.readySinceMs = clock.now();
        grpcAddress ||= msg.grpcAddress;
        if (msg.rank === 0) keys = { issuerKeyId: msg.issuerKeyId, rootKeyId: msg.rootKeyId };
        if (msg.bundle.sequence >= bundle.sequence) bundle = msg.bundle;
        metrics.ready.set(slots.filter((s) => s.ready).length);
        log.info({ worker: slot.rank, pid: msg.pid, grpc: msg.grpcAddress }, `worker ${slot.rank} ready`);
        if (slots.every((s) => s.ready)) startup?.resolve();
        return;
      case 'failed':
        log.error({ worker: slot.rank, code: msg.code }, `worker ${slot.rank} could not start: ${msg.message}`);
        startup?.reject(new MeshcaError(isErrorCode(msg.code) ? msg.code : 'INTERNAL', msg.message));
        return;
      case 'bundle':
        if (msg.bundle.sequence >= bundle.sequence) bundle = msg.bundle;
        return;
      case 'readiness-reply':
      case 'metrics-reply':
        asked.get(msg.id)?.(msg);
        return;
    }
  };

  const fork = (slot: Slot): void => {
    slot.ready = false;
    const worker = cluster.fork({ [WORKER_RANK_ENV]: String(slot.rank) });
    slot.worker = worker;
    slot.pid = worker.process.pid;
    worker.on('message', (msg: unknown) => {
      if (isToPrimary(msg)) onMessage(slot, worker, msg);
    });
    worker.on('error', (err) => log.warn({ worker: slot.rank, err }, `worker ${slot.rank}: IPC error`));
    slot.exited = new Promise<void>((resolve) => {
      worker.once('exit', (code, sig) => {
        const wasReady = slot.ready;
        slot.ready = false;
        slot.worker = undefined;
        metrics.ready.set(slots.filter((s) => s.ready).length);
        resolve();
        if (closing) return;
        if (!started) {
          startup?.reject(new MeshcaError('INTERNAL', `worker ${slot.rank} exited (${sig ?? `code ${code}`}) while starting; see its log above`));
          return;
        }
        const stable = wasReady && slot.readySinceMs !== undefined && clock.now() - slot.readySinceMs >= RESTART_STABLE_MS;
        slot.failures = stable ? 1 : slot.failures + 1;
        const delayMs = Math.min(RESTART_MIN_MS * 2 ** (slot.failures - 1), RESTART_MAX_MS);
        log.error({ worker: slot.rank, pid: worker.process.pid, code, signal: sig, restartInMs: delayMs }, `worker ${slot.rank} exited; restarting it in ${delayMs} ms`);
        metrics.restarts.inc();
        slot.restart = clock.setTimer(delayMs, () => {
          slot.restart = undefined;
          if (!closing) fork(slot);
        });
      });
    });
  };

  /** Asks every worker to drain, waits for them (killing the late ones), then closes the rest; the ledger last. */
  const stopAll = async (graceMs: number, http?: ReturnType<typeof createHttpServer>): Promise<void> => {
    closing = true;
    for (const slot of slots) {
      slot.restart?.cancel();
      sendTo(slot, { t: 'shutdown', graceMs });
    }
    const exits = Promise.all(slots.map((s) => (s.worker ? s.exited : undefined)));
    let kill: NodeJS.Timeout | undefined;
    // Wall-clock on purpose, like the single process's grace: it must end before the orchestrator's kill.
    const late = new Promise<void>((resolve) => {
      kill = setTimeout(() => {
        for (const s of slots) if (s.worker) log.warn({ worker: s.rank }, `worker ${s.rank} still running after the grace period; killing it`);
        for (const s of slots) s.worker?.process.kill('SIGKILL');
        resolve();
      }, graceMs + KILL_AFTER_GRACE_MS);
    });
    await Promise.race([exits, late]);
    await exits;
    clearTimeout(kill);
    if (http) await closeHttp(http);
    retention?.stop();
    if (started) await ledger?.append(serverStopEvent(clock.now(), instance)).catch(() => undefined);
    await ledger?.close();
    await opened.close();
  };

  const http = createHttpServer({
    registry: {
      contentType: registry.contentType,
      metrics: async () => {
        const answers = await Promise.all(slots.map((s) => ask<'metrics-reply'>(s, 'metrics')));
        const all: MetricsJson[] = [await registry.getMetricsAsJSON(), ...answers.flatMap((a) => (a ? [a.metrics] : []))];
        return AggregatorRegistry.aggregate(all as object[][]).metrics();
      },
    },
    readiness: {
      ledger: () => ledgerReadiness(ledger?.health()),
    },
    // Ready only while every worker is, each by its own checks.
    moreFailing: async () => {
      const answers = await Promise.all(slots.map(async (s): Promise<FailingCheck[]> => {
        if (!s.ready) return [{ check: `worker-${s.rank}`, reason: s.restart ? 'restarting' : 'not running' }];
        const reply = await ask<'readiness-reply'>(s, 'readiness');
        if (!reply) return [{ check: `worker-${s.rank}`, reason: 'did not answer' }];
        return reply.failing.map((f) => ({ check: `worker-${s.rank}/${f.check}`, reason: f.reason }));
      }));
      return answers.flat();
    },
    routes: { '/bundle': createBundleRoute(() => bundle) },
    onNotReady: (failing) => log.warn({ failing }, `not ready: ${failing.map((f) => f.check).join(', ')}`),
  });
  try {
    const httpAddress = await listenHttp(http, config.httpListen, '--http-listen');
    const aborted = new Promise<never>((_, reject) => {
      if (signal?.aborted) reject(signal.reason);
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
    aborted.catch(() => undefined);
    for (const slot of slots) fork(slot);
    await Promise.race([allReady, aborted]);
    started = true;
    await ledger?.append(serverStartEvent(clock.now(), config, keys, { grpc: grpcAddress, http: httpAddress, instance, workers: config.workers }));
    log.info({ grpc: grpcAddress, http: httpAddress, workers: config.workers, pids: slots.map((s) => s.pid), issuerKeyId: keys.issuerKeyId, rootKeyId: keys.rootKeyId }, 'meshca serve listening');
    let closed: Promise<void> | undefined;
    return {
      grpcAddress,
      httpAddress,
      pids: () => slots.map((s) => s.pid),
      close(graceMs = config.shutdownGraceMs) {
        closed ??= (async () => {
          log.info({ graceMs, workers: config.workers }, 'shutting down: workers finish the requests in flight');
          await stopAll(graceMs, http);
          log.info('stopped');
        })();
        return closed;
      },
    };
  } catch (err) {
    if (signal?.aborted) log.info('asked to stop while starting; stopping what was started');
    await stopAll(0, http).catch((closeErr) => log.error({ err: closeErr }, 'could not close everything after a failed start'));
    throw err;
  }
}
