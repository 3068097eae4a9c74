// One shared, bounded, keep-alive connection pool to the Kubernetes API server for TokenReview.
// client-node builds a new undici Agent for every request, so every review paid a TLS handshake
// and a TLS context of its own (docs/performance.md). This pool changes how requests travel, never
// where they go or how they are authenticated: the TLS settings come from the kubeconfig through
// client-node itself, and the credentials still go in each request's headers.

import type { KubeConfig } from '@kubernetes/client-node';
import type { AgentOptions as HttpsAgentOptions } from 'node:https';
import { Agent } from 'undici';
import { MINUTE_MS, type Clock } from '../../time/index.ts';

/**
 * Connections to the API server at most; requests beyond them wait in the pool (within their
 * deadline). kube-apiserver speaks HTTP/2, where one connection carries them all.
 */
export const MAX_API_CONNECTIONS = 8;
/**
 * The pool is rebuilt this often, reading the kubeconfig's TLS files again, so a rotated client
 * certificate or CA is picked up as it was when every request built its own connection.
 */
export const API_POOL_MAX_AGE_MS = 5 * MINUTE_MS;

export interface ApiConnectionPool {
  /** The dispatcher for a request made now; undefined leaves client-node's own (proxied clusters). */
  dispatcher(): Promise<Agent | undefined>;
  /** Closes the pool once the requests in flight have finished. */
  close(): Promise<void>;
}

async function buildAgent(kubeConfig: KubeConfig, connections: number): Promise<Agent | undefined> {
  const tls: HttpsAgentOptions = {};
  await kubeConfig.applyToHTTPSOptions(tls);
  const { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername } = tls;
  const options = kubeConfig.createDispatcherOptions(kubeConfig.getCurrentCluster(), { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername });
  switch (options.type) {
    case 'agent':
      return new Agent({ connect: options.connect, connections });
    case 'none':
      return new Agent({ connections });
    default:
      // A proxy (HTTP or SOCKS): client-node's per-request dispatcher, as before.
      return undefined;
  }
}

export function createApiConnectionPool(opts: { kubeConfig: KubeConfig; clock: Clock; connections?: number }): ApiConnectionPool {
  const connections = opts.connections ?? MAX_API_CONNECTIONS;
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
