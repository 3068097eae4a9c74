// What meshca's settings table (src/config), which every command loads, needs from transport: the
// host:port parser and the connection limits' defaults, on their own so that loading them loads no
// gRPC or HTTP/2 library. Constants and pure functions only.

import { MeshcaError } from '../../errors/index.ts';

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

/** File descriptors are the resource: well under common container limits (65,536 and up). */
export const DEFAULT_MAX_CONNECTIONS = 4096;
/** A pod or a node needs a handful; raise it when a load balancer hides client addresses. */
export const DEFAULT_MAX_CONNECTIONS_PER_PEER = 64;
/** An agent or Envoy uses a few streams per connection; each may buffer up to the request limit. */
export const DEFAULT_MAX_STREAMS_PER_CONNECTION = 100;
/** Node's default is 120 s, long enough to hold a descriptor per silent connection. */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
