// The CA's TLS ports (gRPC, the SPIFFE bundle endpoint) behind a connection gate: a plain net.Server
// accepts each TCP connection, refuses it when the total or the peer's count is at its cap, and hands
// the rest to the TLS server behind it (grpc-js's connection injector, or an https.Server). Idle
// floods then cannot exhaust file descriptors, and a handshake that never finishes is dropped after a
// short timeout instead of Node's 120 s default.

import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { MeshcaError } from '../errors/index.ts';
import { listenUrl, type ListenAddress } from './settings/index.ts';


export interface ConnectionLimits {
  /** Open connections accepted at once, from everyone (file descriptors are the resource). */
  readonly maxConnections: number;
  /** Open connections accepted at once from one peer IP address. */
  readonly maxConnectionsPerPeer: number;
  /** A TLS handshake not finished by then is dropped. */
  readonly handshakeTimeoutMs: number;
}

export type RefusalReason = 'total' | 'per-peer';

export interface GatedListener {
  /** host:port actually bound. */
  readonly address: string;
  /** Open connections now, in total and for one peer. */
  connections(peer?: string): number;
  /** Stops accepting; connections already handed on stay until the server behind closes them. */
  stopAccepting(): void;
  /**
   * Resolves once every connection has closed (grpc-js closes its sessions as their calls finish),
   * or after `graceMs`, when it drops the rest; resolves false if it had to. Wall-clock on purpose,
   * like shutdownGrpc: it must end before the orchestrator's kill deadline.
   */
  drain(graceMs: number): Promise<boolean>;
  /** Drops every connection still open. */
  destroyAll(): void;
}

/**
 * grpc-js builds its TLS server from the credentials' constructor options and offers no setting for
 * the handshake timeout; this sets tls.Server's `handshakeTimeout` there. Fails loudly if a grpc-js
 * upgrade moves the field, rather than silently keeping the 120 s default.
 */
function setHandshakeTimeout(credentials: grpc.ServerCredentials, timeoutMs: number): void {
  const options = (credentials as unknown as { serverConstructorOptions?: Record<string, unknown> | null }).serverConstructorOptions;
  if (!options || typeof options !== 'object') throw new MeshcaError('INTERNAL', 'cannot set the TLS handshake timeout on these gRPC server credentials');
  options.handshakeTimeout = timeoutMs;
}

/**
 * Binds the gate to `address` (the value of `setting`): each TCP connection under the caps goes to
 * `hand` (the TLS server behind it), the rest are closed on accept. The TLS handshake timeout is the
 * caller's to set on that server.
 */
export async function listenGated(
  address: ListenAddress,
  setting: string,
  limits: ConnectionLimits,
  hand: (socket: Socket) => void,
  onRefused: (peer: string, reason: RefusalReason) => void = () => undefined,
): Promise<GatedListener> {
  const perPeer = new Map<string, number>();
  const open = new Set<Socket>();
  const gate: NetServer = createServer({ noDelay: true }, (socket) => {
    const peer = socket.remoteAddress ?? 'unknown';
    const mine = perPeer.get(peer) ?? 0;
    const reason: RefusalReason | undefined = open.size >= limits.maxConnections ? 'total' : mine >= limits.maxConnectionsPerPeer ? 'per-peer' : undefined;
    if (reason) {
      socket.destroy();
      onRefused(peer, reason);
      return;
    }
    open.add(socket);
    perPeer.set(peer, mine + 1);
    socket.once('close', () => {
      open.delete(socket);
      const left = (perPeer.get(peer) ?? 1) - 1;
      if (left > 0) perPeer.set(peer, left);
      else perPeer.delete(peer);
    });
    hand(socket);
  });
  const text = listenUrl(address.host, address.port);
  await new Promise<void>((resolve, reject) => {
    gate.once('error', (err) => reject(new MeshcaError('BAD_CONFIG', `${setting} ${text}: cannot listen (${(err as NodeJS.ErrnoException).code ?? err.message})`, { cause: err })));
    gate.listen(address.port, address.host, () => resolve());
  });
  const bound = gate.address();
  const port = bound && typeof bound === 'object' ? bound.port : address.port;
  return {
    address: listenUrl(address.host, port),
    connections: (peer) => (peer === undefined ? open.size : (perPeer.get(peer) ?? 0)),
    // net.Server.close calls back only once every accepted socket has closed; the server behind the
    // gate closes them, so do not wait here.
    stopAccepting: () => void (gate.listening && gate.close()),
    async drain(graceMs) {
      if (open.size === 0) return true;
      let timer: NodeJS.Timeout | undefined;
      const drained = new Promise<boolean>((resolve) => {
        for (const socket of open) socket.once('close', () => open.size === 0 && resolve(true));
      });
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
        timer.unref();
      });
      const inTime = await Promise.race([drained, late]);
      clearTimeout(timer);
      if (!inTime) for (const socket of open) socket.destroy();
      return inTime;
    },
    destroyAll() {
      for (const socket of open) socket.destroy();
    },
  };
}

/** Binds the gate to `address` (the value of `setting`) and serves gRPC over `credentials` behind it. */
export async function listenGrpcGated(
  server: grpc.Server,
  address: ListenAddress,
  setting: string,
  credentials: grpc.ServerCredentials,
  limits: ConnectionLimits,
  onRefused: (peer: string, reason: RefusalReason) => void = () => undefined,
): Promise<GatedListener> {
  setHandshakeTimeout(credentials, limits.handshakeTimeoutMs);
  const injector = server.createConnectionInjector(credentials);
  const listener = await listenGated(address, setting, limits, (socket) => injector.injectConnection(socket), onRefused);
  return {
    ...listener,
    destroyAll() {
      injector.destroy();
      listener.destroyAll();
    },
  };
}
