// One shared, bounded, keep-alive connection pool to the Kubernetes API server per client. A new
// connection per request would pay a TLS handshake and a TLS context each (docs/performance.md).
// The pool changes how requests travel, never where they go or how they are authenticated: the TLS
// settings come from the kubeconfig, and the credentials go in each request's headers.

import { createSecureContext } from 'node:tls';
import { Agent } from 'undici';
import { MINUTE_MS, type Clock } from '../time/index.ts';
import type { KubeConfig } from './config.ts';

/**
 * The pool is rebuilt this often, reading the kubeconfig's TLS files again, so a rotated client
 * certificate or CA is picked up as it was when every request built its own connection.
 */
export const API_POOL_MAX_AGE_MS = 5 * MINUTE_MS;

export interface ApiConnectionPool {
  /** The dispatcher for a request made now; undefined for a proxied cluster (a per-request one, from client-node). */
  dispatcher(): Promise<Agent | undefined>;
  /** Closes the pool once the requests in flight have finished. */
  close(): Promise<void>;
}

async function buildAgent(kubeConfig: KubeConfig, connections: number): Promise<Agent | undefined> {
  if (kubeConfig.auth.proxyDispatcher) return undefined;
  const { ca, cert, key, rejectUnauthorized, servername } = await kubeConfig.auth.tls();
  // One TLS context (the CA parsed once) for all the pool's connections, not one each.
  const secureContext = ca || cert || key ? createSecureContext({ ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) }) : undefined;
  return new Agent({
    connections,
    // As client-go: 30 s keep-alive probes, under cloud load balancers' 60 s idle timeouts.
    connect: { keepAlive: true, keepAliveInitialDelay: 30_000, ...(secureContext ? { secureContext } : {}), ...(rejectUnauthorized !== undefined ? { rejectUnauthorized } : {}), ...(servername ? { servername } : {}) },
  });
}

/**
 * `connections`: the most the pool opens at once (HTTP/1.1). For TokenReview give it the rate
 * limiter's burst, the most calls that can start at once: fewer would queue calls the budget
 * allowed inside the pool, where they can time out.
 */
export function createApiConnectionPool(opts: { kubeConfig: KubeConfig; clock: Clock; connections?: number }): ApiConnectionPool {
  const connections = opts.connections ?? 8;
  let current: { agent: Promise<Agent | undefined>; builtAtMs: number } | undefined;
  const retire = (agent: Promise<Agent | undefined>) =>
    agent.then(
      (a) => a?.close(),
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
