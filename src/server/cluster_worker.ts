// One worker of `meshca serve --workers N`: the whole CA on the gRPC port node:cluster shares,
// except what the primary does for all (the ledger, the HTTP side port, the start/stop records).
// It never serves without its primary: when the IPC channel closes, it drains and exits.

import { describeError, MeshcaError } from '../errors/index.ts';
import { RemoteLedger } from '../ledger/index.ts';
import { untilAborted } from '../time/index.ts';
import { isToWorker, type ToPrimary } from './cluster_protocol.ts';
import { startCaServer, type RunningCaServer, type ServeDeps } from './serve.ts';
import type { ServeConfig } from './config.ts';

/** The process's IPC channel to the primary (process.send and its events), injectable for tests. */
export interface PrimaryChannel {
  send(msg: ToPrimary): boolean;
  onMessage(listener: (msg: unknown) => void): void;
  onDisconnect(listener: () => void): void;
  disconnect(): void;
}

export function processChannel(): PrimaryChannel {
  return {
    send: (msg) => {
      if (!process.connected || !process.send) return false;
      process.send(msg);
      return true;
    },
    onMessage: (listener) => void process.on('message', listener),
    onDisconnect: (listener) => void process.once('disconnect', listener),
    disconnect: () => {
      if (process.connected) process.disconnect?.();
    },
  };
}

/**
 * Serves until the signal aborts, the primary asks it to stop, or the primary is gone; resolves
 * with the exit code. A failed start is reported to the primary (which fails the whole start).
 */
export async function runClusterWorker(config: ServeConfig, deps: ServeDeps & { readonly rank: number; readonly signal: AbortSignal; readonly channel: PrimaryChannel }): Promise<number> {
  const { rank, channel } = deps;
  const log = deps.log;
  const ledger = new RemoteLedger({ send: (id, request) => channel.send({ t: 'ledger', id, request }) }, 'the primary process');
  const stopping = new AbortController();
  const signal = AbortSignal.any([deps.signal, stopping.signal]);
  let server: RunningCaServer | undefined;
  let graceMs = config.shutdownGraceMs;
  channel.onMessage((msg) => {
    if (!isToWorker(msg)) return;
    switch (msg.t) {
      case 'ledger-reply':
        return ledger.receive(msg.id, msg.reply);
      case 'readiness':
        ledger.noteWriterHealth(msg.ledgerHealth);
        channel.send({ t: 'readiness-reply', id: msg.id, failing: server ? server.failing() : [{ check: 'worker', reason: 'starting' }] });
        return;
      case 'metrics':
        void (server?.context.registry.getMetricsAsJSON() ?? Promise.resolve([])).then((metrics) => channel.send({ t: 'metrics-reply', id: msg.id, metrics }));
        return;
      case 'shutdown':
        graceMs = msg.graceMs;
        stopping.abort();
        return;
    }
  });
  channel.onDisconnect(() => {
    ledger.lost('the primary process exited');
    stopping.abort();
  });
  try {
    try {
      server = await startCaServer(config, { ...deps, signal, worker: { rank, ledger } });
    } catch (err) {
      if (signal.aborted) return 0;
      // The primary says it once, as a single process would have.
      const code = err instanceof MeshcaError ? err.code : 'INTERNAL';
      if (!channel.send({ t: 'failed', rank, code, message: describeError(err) })) throw err;
      return 1;
    }
    const { authority } = server.context.state;
    channel.send({ t: 'ready', rank, pid: process.pid, grpcAddress: server.grpcAddress, issuerKeyId: authority.keyId, rootKeyId: authority.rootKeyId, bundle: server.bundle() });
    const running = server;
    const unsubscribe = running.context.state.subscribe(() => channel.send({ t: 'bundle', bundle: running.bundle() }));
    await untilAborted(signal);
    unsubscribe();
    await running.close(graceMs);
    return 0;
  } finally {
    log.flush();
    channel.disconnect();
  }
}
