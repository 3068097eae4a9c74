// One worker thread of the rotation benchmark: Envoy-like proxies for its share of the agents (each
// following that agent's SDS Unix socket, or fixed secrets for the calibration run) and the TLS
// pairs between them. Every handshake is full and fully verified; nothing is shared across threads.

import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { followSds, makeSecrets, newHandshakeStats, startHandshakes, type RunningHandshakes, type SecretsHolder } from '../test/rotation/mesh.ts';
import type { FromWorker, ToWorker, WorkerSetup } from './rotation_handshakes.ts';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const send = (m: FromWorker) => port.postMessage(m);

// Linux: setpriority() on a thread id renices that thread only (/proc/thread-self → "<pid>/task/<tid>").
// The load generator yields to the system under test (agents, CA) and takes every idle cycle.
if (setup.nice > 0) {
  try {
    setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), setup.nice);
  } catch {
    // Not Linux: the thread keeps the process's priority.
  }
}

const stats = newHandshakeStats();
const holders: Array<SecretsHolder & { close?: () => void }> = setup.endpoints.map((e) =>
  e.sdsSocket !== undefined
    ? followSds(e.sdsSocket, e.spiffeId)
    : { spiffeId: e.spiffeId, secrets: makeSecrets(e.fixed!.chainPem, e.fixed!.privateKeyPem, e.fixed!.bundlePem, Date.now()) },
);
await Promise.all(holders.map((h) => ('ready' in h ? h.ready : undefined)));
let running: RunningHandshakes | undefined;
send({ type: 'ready' });

port.on('message', (m: ToWorker) => {
  void (async () => {
    switch (m.type) {
      case 'start':
        running = await startHandshakes(holders, setup.loopsPerPair, setup.firstPair, stats);
        send({ type: 'started' });
        break;
      case 'phase':
        stats.phase = m.phase;
        break;
      case 'count': {
        const cpu = process.threadCpuUsage();
        send({ type: 'count', ok: stats.ok, failed: stats.failed, cpuUs: cpu.user + cpu.system });
        break;
      }
      case 'stop':
        await running?.stop();
        for (const h of holders) h.close?.();
        send({ type: 'stopped', stats });
        port.close();
        break;
    }
  })();
});
