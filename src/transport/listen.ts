// Listening: listen with an HTTP server on a parsed host:port setting (gRPC: connection_limits.ts), and close an
// HTTP server. A bind failure is a BAD_CONFIG error that names the setting.

import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { MeshcaError } from '../errors/index.ts';

import { listenUrl, type ListenAddress } from './settings/index.ts';

/** Starts `server` listening on `address`, the value of `setting`; returns the bound host:port. */
export async function listenHttp(server: HttpServer, address: ListenAddress, setting: string): Promise<string> {
  const { host, port } = address;
  const text = listenUrl(host, port);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new MeshcaError('BAD_CONFIG', `${setting} ${text}: cannot listen (${(err as NodeJS.ErrnoException).code ?? err.message})`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  return listenUrl(host, (server.address() as AddressInfo).port);
}

/** Stops accepting, lets requests in flight finish (idle keep-alive connections close at once), then drops what is left. */
export async function closeHttp(server: HttpServer): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
}

/**
 * Stops accepting calls and lets those in flight finish for up to `graceMs`, then cancels the rest;
 * resolves false if it had to. The grace is wall-clock time on purpose (it must end before the
 * orchestrator's own kill deadline), so it never waits on an injected test clock.
 */
export async function shutdownGrpc(server: grpc.Server, graceMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const drained = new Promise<boolean>((resolve) => server.tryShutdown(() => resolve(true)));
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
    timer.unref();
  });
  const inTime = await Promise.race([drained, late]);
  clearTimeout(timer);
  if (!inTime) server.forceShutdown();
  return inTime;
}
