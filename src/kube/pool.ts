// One shared, bounded, keep-alive connection pool to the Kubernetes API server per client. A new
// connection per request would pay a TLS handshake and a TLS context each (docs/performance.md).
// The pool changes how requests travel, never where they go or how they are authenticated: the TLS
// settings come from the kubeconfig, and the credentials go in each request's headers. It is
// node:https's Agent (taken through process.getBuiltinModule: an ES import of node:http(s) loads
// Node's bundled undici through its WebSocket getters), so `serve` loads no HTTP client library.

import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { MINUTE_MS, type Clock } from '../time/index.ts';
import type { KubeConfig } from './config.ts';

/**
 * The pool is rebuilt this often, reading the kubeconfig's TLS files again, so a rotated client
 * certificate or CA is picked up as it was when every request built its own connection.
 */
export const API_POOL_MAX_AGE_MS = 5 * MINUTE_MS;
/** As client-go: 30 s keep-alive probes, under cloud load balancers' 60 s idle timeouts. */
const KEEPALIVE_PROBE_MS = 30_000;

/** One generation of the pool: its agent, closed once retired (requests in flight finish first). */
export interface PooledAgent {
  readonly agent: HttpsAgent | HttpAgent;
  readonly closed: boolean;
}

export interface ApiConnectionPool {
  /** The connections for a request made now; undefined for a proxied cluster (client-node's dispatcher, per request). */
  dispatcher(): Promise<PooledAgent | undefined>;
  /** Closes the pool; requests in flight finish on their connections, which then close. */
  close(): Promise<void>;
}

class Generation implements PooledAgent {
  closed = false;
  readonly agent: HttpsAgent | HttpAgent;
  constructor(agent: HttpsAgent | HttpAgent) {
    this.agent = agent;
  }

  /** No new requests; idle connections close now, busy ones when their request is done. */
  retire(): void {
    if (this.closed) return;
    this.closed = true;
    this.agent.on('free', (socket: Socket) => socket.destroy());
    for (const sockets of Object.values(this.agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
  }
}

async function buildAgent(kubeConfig: KubeConfig, connections: number): Promise<Generation | undefined> {
  if (kubeConfig.auth.proxyDispatcher) return undefined;
  const common = { keepAlive: true, keepAliveMsecs: KEEPALIVE_PROBE_MS, maxSockets: connections, scheduling: 'lifo' as const };
  if (kubeConfig.server.startsWith('http:')) {
    const http = process.getBuiltinModule('node:http');
    return new Generation(new http.Agent(common));
  }
  const { ca, cert, key, rejectUnauthorized, servername } = await kubeConfig.auth.tls();
  // One TLS context (the CA parsed once) for all the pool's connections, not one each.
  const secureContext = ca || cert || key ? createSecureContext({ ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) }) : undefined;
  const https = process.getBuiltinModule('node:https');
  return new Generation(new https.Agent({ ...common, ...(secureContext ? { secureContext } : {}), ...(rejectUnauthorized !== undefined ? { rejectUnauthorized } : {}), ...(servername ? { servername } : {}) }));
}

/**
 * `connections`: the most the pool opens at once (HTTP/1.1). For TokenReview give it the rate
 * limiter's burst, the most calls that can start at once: fewer would queue calls the budget
 * allowed inside the pool, where they can time out.
 */
export function createApiConnectionPool(opts: { kubeConfig: KubeConfig; clock: Clock; connections?: number }): ApiConnectionPool {
  const connections = opts.connections ?? 8;
  let current: { agent: Promise<Generation | undefined>; builtAtMs: number } | undefined;
  const retire = (agent: Promise<Generation | undefined>) =>
    agent.then(
      (a) => a?.retire(),
      () => undefined,
    );
  return {
    async dispatcher() {
      const now = opts.clock.now();
      if (!current || now - current.builtAtMs >= API_POOL_MAX_AGE_MS) {
        if (current) void retire(current.agent);
        const agent = buildAgent(opts.kubeConfig, connections);
        current = { agent, builtAtMs: now };
        // A kubeconfig that cannot be read now is tried again on the next request.
        agent.catch(() => {
          if (current?.agent === agent) current = undefined;
        });
      }
      return current.agent;
    },
    async close() {
      if (current) await retire(current.agent);
      current = undefined;
    },
  };
}
