// The node authorization feature of `meshca serve` (Istio ambient, --trusted-node-accounts): one
// watch-backed pod cache per cluster the CA reviews tokens for, and the authorizer that reads them.
// Off (no cache, no watch) unless node agents are trusted.

import { createNodeAuthorizer, type NodeAuthorizer, type PodIndex } from '../authn/index.ts';
import type { CaContext } from './context.ts';
import type { Feature } from './features.ts';

export async function nodeAuthorizationFeature(ctx: CaContext): Promise<Feature & { readonly authorizer?: NodeAuthorizer }> {
  const { config, clock, log } = ctx;
  if (config.trustedNodeAccounts.length === 0) return {};
  // Loaded only here: the Kubernetes client is most of a cold start.
  const { startClusterPodIndex } = await import('../authn/kubernetes/index.ts');
  const indexes = new Map<string, PodIndex>();
  try {
    const local = config.kubernetes.kubeconfigPath;
    indexes.set(config.clusterId, startClusterPodIndex({ ...(local ? { kubeconfigPath: local } : {}), clock, log }));
    for (const remote of config.clusters) indexes.set(remote.id, startClusterPodIndex({ kubeconfigPath: remote.kubeconfigPath, clock, log }));
  } catch (err) {
    for (const index of indexes.values()) index.stop();
    throw err;
  }
  const authorizer = createNodeAuthorizer({
    trustedNodeAccounts: config.trustedNodeAccounts,
    trustDomain: ctx.trustDomain,
    trustDomainAliases: config.trustDomainAliases,
    podsOf: (clusterId) => indexes.get(clusterId ?? config.clusterId),
  });
  log.info({ trustedNodeAccounts: config.trustedNodeAccounts.map((a) => `${a.namespace}/${a.serviceAccount}`), clusters: [...indexes.keys()] }, 'node agents may ask for the identities of pods on their node (ImpersonatedIdentity)');
  return {
    authorizer,
    stop: () => {
      for (const index of indexes.values()) index.stop();
    },
  };
}
