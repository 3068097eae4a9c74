// SPIFFE IDs exactly as the SPIFFE ID specification (spiffe/standards SPIFFE-ID.md) defines them.
// Parsing never normalises: an ID that is not already canonical is refused, naming the rule.

import { MeshcaError } from '../errors/index.ts';

const SCHEME_PREFIX = 'spiffe://';
/** SPIFFE-ID §2.1: a trust domain name is at most 255 characters. */
export const MAX_TRUST_DOMAIN_LENGTH = 255;
/** SPIFFE-ID §2.3: a SPIFFE ID is at most 2048 bytes. */
export const MAX_SPIFFE_ID_LENGTH = 2048;

/** SPIFFE-ID §2.1: lowercase letters, digits, dots, dashes and underscores. */
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
/** SPIFFE-ID §2.2: path segments use letters, digits, dots, dashes and underscores. */
const SEGMENT_CHARS = /^[a-zA-Z0-9._-]+$/;

export interface SpiffeId {
  readonly trustDomain: string;
  /** Empty for a trust-domain ID, else starts with '/'. */
  readonly path: string;
  /** The canonical string form. */
  readonly uri: string;
}

function refuse(input: string, rule: string): never {
  const shown = input.length > 120 ? `${input.slice(0, 120)}…` : input;
  throw new MeshcaError('BAD_SPIFFE_ID', `invalid SPIFFE ID "${shown}": ${rule}`);
}

export function validateTrustDomain(trustDomain: string, original = trustDomain): void {
  if (trustDomain.length === 0) refuse(original, 'trust domain is missing');
  if (trustDomain.length > MAX_TRUST_DOMAIN_LENGTH) {
    refuse(original, `trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} characters`);
  }
  if (trustDomain.includes(':')) refuse(original, 'a port is not allowed in the trust domain');
  if (trustDomain.includes('@')) refuse(original, 'userinfo is not allowed in the trust domain');
  if (!TRUST_DOMAIN_CHARS.test(trustDomain)) {
    refuse(original, 'trust domain may contain only lowercase letters, digits, ".", "-" and "_"');
  }
}

function validatePath(path: string, original: string): void {
  if (path === '') return;
  if (!path.startsWith('/')) refuse(original, 'path must start with "/"');
  if (path.endsWith('/')) refuse(original, 'path must not end with "/"');
  for (const segment of path.slice(1).split('/')) {
    if (segment === '') refuse(original, 'path segments must not be empty');
    if (segment === '.' || segment === '..') refuse(original, `path segment "${segment}" is not allowed`);
    if (!SEGMENT_CHARS.test(segment)) {
      refuse(original, 'path segments may contain only letters, digits, ".", "-" and "_"');
    }
  }
}

export function parseSpiffeId(input: string): SpiffeId {
  if (input.length === 0) refuse(input, 'it is empty');
  if (Buffer.byteLength(input, 'utf8') > MAX_SPIFFE_ID_LENGTH) {
    refuse(input, `it is longer than ${MAX_SPIFFE_ID_LENGTH} bytes`);
  }
  if (!input.startsWith(SCHEME_PREFIX)) {
    if (input.toLowerCase().startsWith(SCHEME_PREFIX)) refuse(input, 'scheme must be lowercase "spiffe"');
    refuse(input, 'scheme must be "spiffe://"');
  }
  const rest = input.slice(SCHEME_PREFIX.length);
  if (rest.includes('?')) refuse(input, 'a query is not allowed');
  if (rest.includes('#')) refuse(input, 'a fragment is not allowed');
  if (rest.includes('%')) refuse(input, 'percent-encoding is not allowed');
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  validateTrustDomain(trustDomain, input);
  validatePath(path, input);
  return Object.freeze({ trustDomain, path, uri: input });
}

export function formatSpiffeId(trustDomain: string, ...segments: string[]): SpiffeId {
  const uri = `${SCHEME_PREFIX}${trustDomain}${segments.map((s) => `/${s}`).join('')}`;
  return parseSpiffeId(uri);
}

/** Kubernetes namespaces are DNS-1123 labels. */
const K8S_NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Kubernetes service-account names are DNS-1123 subdomains: DNS-1123 labels joined by single dots ("a..b" is not one). */
const K8S_SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** RFC 1123 §2.1 / Kubernetes: a subdomain is at most 253 characters. */
const MAX_SUBDOMAIN_LENGTH = 253;

/** Whether `name` can be a Kubernetes namespace (a DNS-1123 label). */
export function isKubernetesNamespace(name: string): boolean {
  return K8S_NAMESPACE.test(name);
}

/** Whether `name` can be a Kubernetes service account (a DNS-1123 subdomain). */
export function isKubernetesServiceAccount(name: string): boolean {
  return name.length <= MAX_SUBDOMAIN_LENGTH && K8S_SERVICE_ACCOUNT.test(name);
}

/**
 * The Kubernetes workload form: spiffe://<td>/ns/<namespace>/sa/<service-account>. Names must be
 * valid Kubernetes names, so one can never smuggle extra path segments ("a/sa/admin").
 */
export function kubernetesSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
  if (!K8S_NAMESPACE.test(namespace)) {
    throw new MeshcaError('BAD_SPIFFE_ID', `namespace "${namespace.slice(0, 80)}" is not a valid Kubernetes namespace name (DNS-1123 label)`);
  }
  if (!isKubernetesServiceAccount(serviceAccount)) {
    throw new MeshcaError('BAD_SPIFFE_ID', `service account "${serviceAccount.slice(0, 80)}" is not a valid Kubernetes name (DNS-1123 subdomain)`);
  }
  return formatSpiffeId(trustDomain, 'ns', namespace, 'sa', serviceAccount);
}

/** Reads back the namespace and service account of a Kubernetes-form ID, or undefined. */
export function kubernetesIdentityOf(id: SpiffeId): { namespace: string; serviceAccount: string } | undefined {
  const m = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id.path);
  if (!m) return undefined;
  return { namespace: m[1]!, serviceAccount: m[2]! };
}
