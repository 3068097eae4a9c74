// Istio ambient mode: a node agent (ztunnel) authenticates as itself and asks, through
// `ImpersonatedIdentity`, for the identity of a workload on its node. Granted only when the agent
// is one of --trusted-node-accounts (CA_TRUSTED_NODE_ACCOUNTS) and a pod of that service account
// runs on the agent's node, as Istio's NodeAuthorizer decides (security/pkg/server/ca/node_auth.go).
// Every refusal names the rule; it never falls back to the agent's own identity.

import { describeError } from '../errors/index.ts';
import { kubernetesIdentityOf, kubernetesSpiffeId, parseSpiffeId } from '../spiffe/index.ts';
import type { Caller } from './types.ts';

/** The request metadata field ztunnel sets (src/identity/caclient.rs) and Istio reads (pkg/security). */
export const IMPERSONATED_IDENTITY_FIELD = 'ImpersonatedIdentity';

/** What the authorizer needs of a cluster's pod cache (src/authn/kubernetes/pod_index.ts). */
export interface NodePods {
  readonly synced: boolean;
  pod(namespace: string, name: string): { readonly uid: string; readonly serviceAccount: string; readonly nodeName: string } | undefined;
  hasServiceAccountOnNode(nodeName: string, namespace: string, serviceAccount: string): boolean;
}

export interface NodeAuthorizerOptions {
  /** `namespace/serviceAccount` pairs (--trusted-node-accounts). */
  readonly trustedNodeAccounts: readonly { readonly namespace: string; readonly serviceAccount: string }[];
  /** The CA's trust domain: every certificate carries it. */
  readonly trustDomain: string;
  /** Trust domains an impersonated identity may name instead (--trust-domain-aliases). */
  readonly trustDomainAliases: readonly string[];
  /** The pod cache of the caller's cluster (its ClusterID); undefined if that cluster has none. */
  readonly podsOf: (clusterId: string | undefined) => NodePods | undefined;
}

export type ImpersonationOutcome =
  | { readonly ok: true; readonly caller: Caller }
  | { readonly ok: false; readonly kind: 'refused' | 'unavailable'; readonly reason: string };

export interface NodeAuthorizer {
  /** The workload's identity, as a Caller vouched for by the node agent; or why not. */
  impersonate(agent: Caller, requested: string): ImpersonationOutcome;
}

const RULE = '--trusted-node-accounts';

export function createNodeAuthorizer(opts: NodeAuthorizerOptions): NodeAuthorizer {
  const trusted = new Set(opts.trustedNodeAccounts.map((a) => `${a.namespace}/${a.serviceAccount}`));
  const domains = new Set([opts.trustDomain, ...opts.trustDomainAliases]);
  const refused = (reason: string): ImpersonationOutcome => ({ ok: false, kind: 'refused', reason });

  return {
    impersonate(agent: Caller, requested: string): ImpersonationOutcome {
      const who = agent.spiffeId.uri;
      if (!agent.namespace || !agent.serviceAccount || !trusted.has(`${agent.namespace}/${agent.serviceAccount}`)) {
        return refused(`ImpersonatedIdentity refused: ${who} is not a trusted node agent (${RULE})`);
      }
      let id;
      try {
        id = parseSpiffeId(requested);
      } catch (err) {
        return refused(`ImpersonatedIdentity refused: ${describeError(err)}`);
      }
      if (!domains.has(id.trustDomain)) {
        return refused(`ImpersonatedIdentity refused: trust domain "${id.trustDomain}" is not this CA's (${[...domains].join(', ')}; --trust-domain-aliases)`);
      }
      const workload = kubernetesIdentityOf(id);
      if (!workload) return refused(`ImpersonatedIdentity refused: ${id.uri} is not of the form spiffe://<trust domain>/ns/<namespace>/sa/<service account>`);
      const pods = opts.podsOf(agent.clusterId);
      if (!pods) return refused(`ImpersonatedIdentity refused: no pod cache for cluster "${agent.clusterId ?? '-'}" (${RULE})`);
      if (!pods.synced) return { ok: false, kind: 'unavailable', reason: 'ImpersonatedIdentity cannot be checked yet: the pod cache has not synced with the API server' };
      // The agent's node: from its bound token (kubernetes.io.node.name), checked against its pod
      // in the cache when both are known (Istio reads the pod; a recreated pod must not pass).
      const agentPod = agent.podName ? pods.pod(agent.namespace, agent.podName) : undefined;
      if (agentPod && agent.podUid && agentPod.uid !== agent.podUid) {
        return refused(`ImpersonatedIdentity refused: the node agent's pod ${agent.namespace}/${agent.podName} was recreated (uid differs from its token's)`);
      }
      if (agentPod && agentPod.serviceAccount !== agent.serviceAccount) {
        return refused(`ImpersonatedIdentity refused: pod ${agent.namespace}/${agent.podName} runs as ${agentPod.serviceAccount}, not ${agent.serviceAccount}`);
      }
      const nodeName = agent.nodeName ?? (agentPod?.nodeName || undefined);
      if (!nodeName) return refused(`ImpersonatedIdentity refused: ${who}'s token names no node (a bound token with kubernetes.io.node.name is needed)`);
      if (agentPod?.nodeName && agentPod.nodeName !== nodeName) {
        return refused(`ImpersonatedIdentity refused: the node agent's token names node "${nodeName}" but its pod runs on "${agentPod.nodeName}"`);
      }
      if (!pods.hasServiceAccountOnNode(nodeName, workload.namespace, workload.serviceAccount)) {
        return refused(`ImpersonatedIdentity refused: no pod of service account ${workload.namespace}/${workload.serviceAccount} runs on node "${nodeName}" (${RULE})`);
      }
      return {
        ok: true,
        caller: {
          // The certificate always carries the CA's own trust domain (an alias names the same workload).
          spiffeId: kubernetesSpiffeId(opts.trustDomain, workload.namespace, workload.serviceAccount),
          authenticator: agent.authenticator,
          namespace: workload.namespace,
          serviceAccount: workload.serviceAccount,
          nodeName,
          ...(agent.clusterId !== undefined ? { clusterId: agent.clusterId } : {}),
          impersonatedBy: { spiffeId: agent.spiffeId, authenticator: agent.authenticator, ...(agent.podName ? { podName: agent.podName } : {}) },
          ...(agent.token ? { token: agent.token } : {}),
          ...(agent.expiresAtMs !== undefined ? { expiresAtMs: agent.expiresAtMs } : {}),
        },
      };
    },
  };
}
