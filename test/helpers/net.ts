// Loopback socket helpers for the connection-limit tests.

import { connect, createServer, type Socket } from 'node:net';

/** A port free on 127.0.0.1 now (for a flag that needs the port before the server starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** An idle TCP connection to 127.0.0.1:`port` from `localAddress` (a loopback address), once connected. */
export function openIdle(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves when the server closes `s`. */
export const closedByServer = (s: Socket) => new Promise<void>((resolve) => s.once('close', () => resolve()));
