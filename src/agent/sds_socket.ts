// Serves SDS on the agent's Unix socket: parent directory made, a stale socket from a previous run
// removed (a live one is refused, so two agents never fight), socket file mode 0660.

import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { MeshcaError } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import { addSdsService, type SdsMetrics, type SecretSource } from '../sds/index.ts';
import { shutdownGrpc } from '../transport/index.ts';

/** Owner and group (Envoy's) may connect; others may not. */
export const SDS_SOCKET_MODE = 0o660;
const SOCKET_DIR_MODE = 0o750;
const PROBE_TIMEOUT_MS = 500;
/** Long-lived SDS streams never finish on their own; they are ended after this long. */
const SHUTDOWN_GRACE_MS = 100;

export interface SdsSocketServer {
  readonly path: string;
  close(): Promise<void>;
}

function isListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
  });
}

async function clearStaleSocket(path: string): Promise<void> {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) {
    throw new MeshcaError('BAD_CONFIG', `--sds-socket ${path} exists and is not a socket; remove it or choose another path`);
  }
  if (await isListening(path)) {
    throw new MeshcaError('BAD_CONFIG', `--sds-socket ${path} is in use by another process (another agent?)`);
  }
  unlinkSync(path);
}

export async function serveSdsOnSocket(path: string, source: SecretSource, log: Logger, metrics: SdsMetrics): Promise<SdsSocketServer> {
  mkdirSync(dirname(path), { recursive: true, mode: SOCKET_DIR_MODE });
  await clearStaleSocket(path);
  const server = new grpc.Server();
  addSdsService(server, { source, log, metrics });
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${path}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) reject(new MeshcaError('BAD_CONFIG', `--sds-socket ${path}: cannot listen (${err.message})`, { cause: err }));
      else resolve();
    });
  });
  chmodSync(path, SDS_SOCKET_MODE);
  return {
    path,
    async close() {
      await shutdownGrpc(server, SHUTDOWN_GRACE_MS);
      try {
        unlinkSync(path);
      } catch {
        // Already gone.
      }
    },
  };
}
