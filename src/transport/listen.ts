// Listening: parse a host:port setting (once, when settings load), listen with an HTTP server (gRPC: connection_limits.ts), and close an
// HTTP server. A bind failure is a BAD_CONFIG error that names the setting.

import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { MeshcaError } from '../errors/index.ts';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** host:port, [v6]:port; port 0 picks a free one. */
export function parseListenAddress(text: string, setting: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new MeshcaError('BAD_CONFIG', `${setting} "${text}" is not host:port (e.g. 0.0.0.0:15012, [::]:15012, 127.0.0.1:0)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** host:port, with an IPv6 host in brackets. */
export function listenUrl(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

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
