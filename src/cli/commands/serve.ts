// `meshca serve`: run the CA until SIGINT/SIGTERM, then shut down gracefully and exit 0. A failure to
// load or bind stops it before it serves anything, with a non-zero exit. With --workers N > 1 this
// process is the cluster's primary, and node:cluster runs this same command again in each worker.
import cluster from 'node:cluster';
import { MeshcaError } from '../../errors/index.ts';
import { createLogger } from '../../observability/index.ts';
import { processChannel, runClusterWorker, serveConfigFrom, SERVE_OPTIONS, startCaServer, startClusterPrimary, WORKER_RANK_ENV } from '../../server/index.ts';
import { untilAborted } from '../../time/index.ts';
import { defineCommand } from '../command.ts';
import { SIGNER_PIN_ENV } from '../custody.ts';

export const serveCommand = defineCommand({
  path: ['serve'],
  usage: 'meshca serve [--keys DIR] [--listen 0.0.0.0:15012] [--http-listen 0.0.0.0:15014] [--db sqlite:<keys>/ledger.db] [--new-ledger] [--workers 1|N|auto] …',
  options: SERVE_OPTIONS,
  async run(v, ctx) {
    const config = serveConfigFrom(v);
    const log = createLogger(config.logLevel);
    const signerPin = ctx.env[SIGNER_PIN_ENV];
    const deps = { clock: ctx.clock, log, signal: ctx.signal, ...(signerPin !== undefined ? { signerPin } : {}) };
    if (cluster.isWorker && config.workers > 1) {
      const rank = Number(ctx.env[WORKER_RANK_ENV] ?? NaN);
      if (!Number.isInteger(rank) || rank < 0 || rank >= config.workers) throw new MeshcaError('BAD_CONFIG', `${WORKER_RANK_ENV} "${ctx.env[WORKER_RANK_ENV] ?? ''}" is not a worker rank below --workers ${config.workers} (the primary sets it)`);
      return runClusterWorker(config, { ...deps, log: log.child({ worker: rank, pid: process.pid }), rank, channel: processChannel() });
    }
    let server;
    try {
      server = config.workers > 1 ? await startClusterPrimary(config, deps) : await startCaServer(config, deps);
    } catch (err) {
      // The first SIGINT/SIGTERM is honoured while starting too: what started is stopped, exit 0.
      if (!ctx.signal.aborted) throw err;
      log.info('stopped before serving');
      log.flush();
      return 0;
    }
    await untilAborted(ctx.signal);
    await server.close();
    log.flush();
    return 0;
  },
});
