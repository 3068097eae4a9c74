// meshca's SPIFFE bundle endpoint for federating peers (Bundle spec §5, profile https_spiffe):
// HTTPS presenting meshca's own X509-SVID (the endpoint SPIFFE ID), serving the bundle document
// with spiffe_sequence and spiffe_refresh_hint. The SVID is re-issued at half its lifetime on the
// injected clock. Serves public data only; never a key. Behind the same connection gate and limits
// as the gRPC port (--max-connections, --max-connections-per-peer, --tls-handshake-timeout); a
// request is one GET with small headers and no body.

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeError } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import type { Clock, Timer } from '../time/index.ts';
import { listenGated, type ConnectionLimits, type ListenAddress, type RefusalReason } from '../transport/index.ts';

export interface EndpointCredential {
  /** Leaf then intermediates. */
  readonly certChainPem: string;
  readonly keyPem: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

export interface BundleEndpointOptions {
  readonly address: ListenAddress;
  /** Issues the endpoint's X509-SVID (through the CA's issuer, so it is checked and recorded). */
  readonly issue: () => Promise<EndpointCredential>;
  readonly route: (req: IncomingMessage, res: ServerResponse) => void;
  readonly clock: Clock;
  readonly log: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** The gRPC port's limits (--max-connections, --max-connections-per-peer, --tls-handshake-timeout). */
  readonly limits: ConnectionLimits;
  readonly onRefused?: (peer: string, reason: RefusalReason) => void;
}

export interface BundleEndpoint {
  readonly address: string;
  stop(): Promise<void>;
}

const RETRY_MS = 10_000;
/** A GET of one document needs a few hundred bytes of headers. */
const MAX_HEADER_BYTES = 8 * 1024;
/** Connections still open this long after stop() are dropped. */
const STOP_GRACE_MS = 1_000;

export async function startBundleEndpoint(o: BundleEndpointOptions): Promise<BundleEndpoint> {
  const first = await o.issue();
  const bounds = {
    handshakeTimeout: o.limits.handshakeTimeoutMs,
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeout: o.limits.handshakeTimeoutMs,
    requestTimeout: o.limits.handshakeTimeoutMs,
  };
  const server: Server = createServer({ cert: first.certChainPem, key: first.keyPem, ...bounds }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { connection: 'close' }).end();
      return;
    }
    if (req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0') {
      res.writeHead(413, { connection: 'close' }).end();
      return;
    }
    if (path !== '/' && path !== '/bundle') {
      res.writeHead(404).end();
      return;
    }
    o.route(req, res);
  });
  let timer: Timer | undefined;
  let stopped = false;
  const schedule = (cred: EndpointCredential) => {
    const halfLifeMs = Math.max(1_000, (cred.notAfterMs - cred.notBeforeMs) / 2 - (o.clock.now() - cred.notBeforeMs));
    timer = o.clock.setTimer(halfLifeMs, () => void renew());
  };
  const renew = async () => {
    if (stopped) return;
    try {
      const cred = await o.issue();
      server.setSecureContext({ cert: cred.certChainPem, key: cred.keyPem });
      schedule(cred);
    } catch (err) {
      o.log.error({ reason: describeError(err) }, 'could not renew the bundle endpoint certificate; retrying');
      timer = o.clock.setTimer(RETRY_MS, () => void renew());
    }
  };
  schedule(first);
  const gate = await listenGated(o.address, '--bundle-endpoint', o.limits, (socket) => server.emit('connection', socket), o.onRefused);
  const address = gate.address;
  o.log.info({ address }, 'serving the SPIFFE bundle endpoint (https_spiffe)');
  return {
    address,
    async stop() {
      stopped = true;
      timer?.cancel();
      gate.stopAccepting();
      server.closeIdleConnections();
      await gate.drain(STOP_GRACE_MS);
    },
  };
}
