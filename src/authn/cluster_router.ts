// Istio multi-cluster: the `ClusterID` request header picks which cluster's API server reviews a
// Kubernetes token (Istio's KubeJWTAuthenticator does the same with its remote kube clients). Each
// cluster has its own authenticator, so caches and rate limits never mix tokens across clusters.
// An unknown cluster is refused by name; it never falls back to the local cluster.

import type { Authenticator, AuthOutcome, AuthRequest } from './types.ts';

export interface ClusterRouterOptions {
  /** `--cluster-id`: the cluster a request without a ClusterID header belongs to. */
  readonly localClusterId: string;
  /** Every cluster's authenticator, the local one included. */
  readonly clusters: ReadonlyMap<string, Authenticator>;
}

const MAX_ID_CHARS_SHOWN = 100;

export function createClusterRouter(opts: ClusterRouterOptions): Authenticator {
  if (!opts.clusters.has(opts.localClusterId)) throw new Error(`cluster router: no authenticator for the local cluster "${opts.localClusterId}"`);
  const known = [...opts.clusters.keys()].join(', ');
  const name = [...new Set([...opts.clusters.values()].map((a) => a.name))].join('+');
  return {
    name,
    async authenticate(req: AuthRequest): Promise<AuthOutcome> {
      if (!req.bearerToken) return { ok: false, kind: 'skip', reason: 'no bearer token' };
      const clusterId = req.clusterId ?? opts.localClusterId;
      const authenticator = opts.clusters.get(clusterId);
      if (!authenticator) {
        const shown = clusterId.length > MAX_ID_CHARS_SHOWN ? `${clusterId.slice(0, MAX_ID_CHARS_SHOWN)}…` : clusterId;
        return { ok: false, kind: 'refused', reason: `unknown cluster "${shown}" (ClusterID header); this CA reviews tokens of: ${known} (--cluster-id, --cluster)` };
      }
      const outcome = await authenticator.authenticate(req);
      return outcome.ok ? { ok: true, caller: { ...outcome.caller, clusterId } } : outcome;
    },
  };
}
