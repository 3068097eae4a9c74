// The runtime deny list's rules: what an entry names (one SPIFFE ID, a namespace, or one service
// account of a namespace), how it is written, and whether it stops a caller now. Pure: the entries
// come from the key store (src/rotation) and the time from the caller's Clock.

import { MeshcaError } from '../errors/index.ts';
import { kubernetesIdentityOf, parseSpiffeId } from '../spiffe/index.ts';
import type { Caller } from './types.ts';

/** What a deny entry stops: discriminated, never an untyped string match. */
export type DenyTarget =
  | { readonly kind: 'id'; readonly uri: string }
  | { readonly kind: 'namespace'; readonly namespace: string }
  | { readonly kind: 'service-account'; readonly namespace: string; readonly serviceAccount: string };

export interface DenyEntry {
  /** The target as written: a SPIFFE ID, `ns/<ns>` or `ns/<ns>/sa/<sa>` (formatDenyTarget's form). */
  readonly target: string;
  readonly reason: string;
  /** Who added it: an admin's SPIFFE ID or "cli:<user>". */
  readonly addedBy: string;
  readonly addedAtMs: number;
  /** The entry stops applying at this time; absent = until removed. */
  readonly untilMs?: number;
}

// Kubernetes names (RFC 1123 labels for namespaces; DNS subdomains for service accounts).
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Parses `spiffe://…`, `ns/<ns>` or `ns/<ns>/sa/<sa>`; anything else is BAD_REQUEST naming the forms. */
export function parseDenyTarget(text: string): DenyTarget {
  const t = text.trim();
  if (t.startsWith('spiffe://')) {
    try {
      return { kind: 'id', uri: parseSpiffeId(t).uri };
    } catch (err) {
      throw new MeshcaError('BAD_REQUEST', `deny target ${JSON.stringify(t)} is not a valid SPIFFE ID`, { cause: err });
    }
  }
  const parts = t.split('/');
  const bad = () => new MeshcaError('BAD_REQUEST', `deny target ${JSON.stringify(t)} must be a SPIFFE ID, ns/<namespace> or ns/<namespace>/sa/<service-account>`);
  if (parts[0] !== 'ns' || !NAMESPACE.test(parts[1] ?? '')) throw bad();
  if (parts.length === 2) return { kind: 'namespace', namespace: parts[1]! };
  if (parts.length === 4 && parts[2] === 'sa' && SERVICE_ACCOUNT.test(parts[3]!)) return { kind: 'service-account', namespace: parts[1]!, serviceAccount: parts[3]! };
  throw bad();
}

export function formatDenyTarget(target: DenyTarget): string {
  switch (target.kind) {
    case 'id':
      return target.uri;
    case 'namespace':
      return `ns/${target.namespace}`;
    case 'service-account':
      return `ns/${target.namespace}/sa/${target.serviceAccount}`;
  }
}

export function isDenyEntryInForce(entry: DenyEntry, nowMs: number): boolean {
  return entry.untilMs === undefined || nowMs < entry.untilMs;
}

function targetMatches(target: DenyTarget, caller: Caller): boolean {
  if (target.kind === 'id') return caller.spiffeId.uri === target.uri;
  const k8s = kubernetesIdentityOf(caller.spiffeId);
  const namespace = caller.namespace ?? k8s?.namespace;
  if (namespace !== target.namespace) return false;
  if (target.kind === 'namespace') return true;
  return (caller.serviceAccount ?? k8s?.serviceAccount) === target.serviceAccount;
}

/** Finds the entry in force that stops a caller now, if any (the first one, in list order). */
export type DenyCheck = (caller: Caller, nowMs: number) => DenyEntry | undefined;

/** Parses every target once, so the check on the issuance path does no parsing. */
export function compileDenyList(entries: readonly DenyEntry[]): DenyCheck {
  if (entries.length === 0) return () => undefined;
  const compiled = entries.map((entry) => ({ entry, target: parseDenyTarget(entry.target) }));
  return (caller, nowMs) => compiled.find((c) => isDenyEntryInForce(c.entry, nowMs) && targetMatches(c.target, caller))?.entry;
}

/** The message a denied caller (and the ledger) gets: the entry, who added it and why. */
export function denyEntryMessage(caller: Caller, entry: DenyEntry): string {
  const until = entry.untilMs === undefined ? '' : ` until ${new Date(entry.untilMs).toISOString()}`;
  return `identity ${caller.spiffeId.uri} is on the runtime deny list (${entry.target}, added by ${entry.addedBy}${until}: ${entry.reason})`;
}
