// One shared, bounded, keep-alive connection pool to the Kubernetes API server for TokenReview.
// client-node builds a new undici Agent for every request, so every review paid a TLS handshake
// and a TLS context of its own (docs/performance.md). This pool changes how requests travel, never
// where they go or how they are authenticated: the TLS settings come from the kubeconfig through
// client-node itself, and the credentials still go in each request's headers.

import type { KubeConfig } from '@kubernetes/client-node';
import type { AgentOptions as HttpsAgentOptions } from 'node:https';
import { createSecureContext } from 'node:tls';
import { Agent } from 'undici';
import { MINUTE_MS, type Clock } from '../../time/index.ts';

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
    case 'agent': {
      // One TLS context (the CA parsed once) for all the pool's connections, not one each.
      const { ca: caOption, cert: certOption, key: keyOption, pfx: pfxOption, passphrase: passphraseOption, ...connect } = options.connect;
      const secureContext = createSecureContext({ ca: caOption, cert: certOption, key: keyOption, pfx: pfxOption, passphrase: passphraseOption });
      return new Agent({ connect: { ...connect, secureContext }, connections });
    }
    case 'none':
      return new Agent({ connections });
    default:
      // A proxy (HTTP or SOCKS): client-node's per-request dispatcher, as before.
      return undefined;
  }
}

/**
 * `connections`: the most the pool opens at once (HTTP/1.1; kube-apiserver speaks HTTP/2, where
 * one connection carries every call). Give it the rate limiter's burst, the most calls that can
 * start at once: fewer would queue calls the budget allowed inside the pool, where they can time out.
 */
export function createApiConnectionPool(opts: { kubeConfig: KubeConfig; clock: Clock; connections: number }): ApiConnectionPool {
  const { connections } = opts;
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
