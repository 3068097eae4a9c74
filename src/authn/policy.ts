// Identity policy applied to an authenticated caller, whichever authenticator vouched for it:
// --allow-namespaces, --deny-namespaces, --deny-ids and the runtime deny list (`meshca deny`).
// A denial names the rule; it never says "no".

import { describeError, MeshcaError } from '../errors/index.ts';
import { kubernetesIdentityOf, parseSpiffeId } from '../spiffe/index.ts';
import { denyEntryMessage, type DenyCheck } from './deny_list.ts';
import type { Caller } from './types.ts';

export type PolicyRule = 'deny-ids' | 'deny-namespaces' | 'allow-namespaces' | 'deny-list';

export type PolicyDecision = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly rule: PolicyRule };

export interface IdentityPolicy {
  check(caller: Caller): PolicyDecision;
}

export interface IdentityPolicyOptions {
  readonly allowNamespaces?: readonly string[];
  readonly denyNamespaces?: readonly string[];
  readonly denyIds?: readonly string[];
}

/** The runtime deny list as the server follows it from the key store, and the time to judge `--until` by. */
export interface RuntimeDenyList {
  readonly check: () => DenyCheck;
  readonly nowMs: () => number;
}

function namespaceOf(caller: Caller): string | undefined {
  return caller.namespace ?? kubernetesIdentityOf(caller.spiffeId)?.namespace;
}

/**
 * Deny rules win over allow rules; an empty allow list admits every namespace. A caller without a
 * namespace (e.g. a non-Kubernetes SPIFFE ID renewing over mTLS) passes the namespace rules only
 * when no allow list is set.
 */
export function createIdentityPolicy(opts: IdentityPolicyOptions, runtime?: RuntimeDenyList): IdentityPolicy {
  const denyIds = new Set<string>();
  for (const id of opts.denyIds ?? []) {
    try {
      denyIds.add(parseSpiffeId(id).uri);
    } catch (err) {
      throw new MeshcaError('BAD_CONFIG', `deny-ids: ${describeError(err)}`, { cause: err });
    }
  }
  const denyNamespaces = new Set(opts.denyNamespaces ?? []);
  const allowNamespaces = new Set(opts.allowNamespaces ?? []);
  for (const ns of denyNamespaces) {
    if (allowNamespaces.has(ns)) throw new MeshcaError('BAD_CONFIG', `namespace "${ns}" is in both --allow-namespaces and --deny-namespaces`);
  }
  return {
    check(caller: Caller): PolicyDecision {
      if (denyIds.has(caller.spiffeId.uri)) {
        return { ok: false, rule: 'deny-ids', reason: `identity ${caller.spiffeId.uri} is on the deny list (--deny-ids)` };
      }
      const entry = runtime?.check()(caller, runtime.nowMs());
      if (entry) return { ok: false, rule: 'deny-list', reason: denyEntryMessage(caller, entry) };
      const ns = namespaceOf(caller);
      if (ns !== undefined && denyNamespaces.has(ns)) {
        return { ok: false, rule: 'deny-namespaces', reason: `namespace "${ns}" is denied (--deny-namespaces)` };
      }
      if (allowNamespaces.size > 0 && (ns === undefined || !allowNamespaces.has(ns))) {
        const what = ns === undefined ? `identity ${caller.spiffeId.uri} has no namespace` : `namespace "${ns}" is not allowed`;
        return { ok: false, rule: 'allow-namespaces', reason: `${what} (--allow-namespaces: ${[...allowNamespaces].join(', ')})` };
      }
      return { ok: true };
    },
  };
}
