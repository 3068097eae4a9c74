// `meshca serve` configuration: built once from validated settings, frozen, passed down.

import { readdirSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { validateTtlPolicy, type TtlPolicy } from '../ca/index.ts';
import type { KubernetesAuthOptions } from '../authn/index.ts';
import type { CommandOptions, Settings } from '../config/index.ts';
import { describeError, MeshcaError } from '../errors/index.ts';
import { DEFAULT_LEASE_DURATION_MS } from '../distribution/index.ts';
import { isSecretKeyStore } from '../keystore/index.ts';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_INTERVAL_MS, ledgerUrlFor } from '../ledger/index.ts';
import type { KeyType } from '../pki/index.ts';
import { DEFAULT_CA_EXPIRY_WARNING_MS, DEFAULT_KEYS_POLL_MS, DEFAULT_ROOT_EXPIRY_WARNING_MS } from '../rotation/index.ts';
import { isKubernetesNamespace, isKubernetesServiceAccount, validateTrustDomain, type SpiffeId } from '../spiffe/index.ts';
import { parseListenAddress, type ConnectionLimits, type ListenAddress } from '../transport/index.ts';
import { parseFederationPeer, type FederationPeer } from '../federation/index.ts';
import { autoWorkers } from './cpu_limit.ts';

export interface ServeConfig {
  readonly keysDir: string;
  /** --trust-domain if given: names the trust domain for a new CA, and must agree with an existing one. */
  readonly trustDomain?: string;
  /** --db, or the default beside the key directory. */
  readonly db: string;
  /** --new-ledger: may start an empty ledger although this CA's ledger key anchored another. */
  readonly newLedger: boolean;
  readonly listen: ListenAddress;
  readonly httpListen: ListenAddress;
  /** Token audiences accepted (any one); the first is the one named in refusals. */
  readonly audiences: readonly string[];
  readonly namespace: string;
  readonly clusterDomain: string;
  readonly extraDnsNames: readonly string[];
  readonly extraIpAddresses: readonly string[];
  /** Istio multi-cluster: the local cluster's id and the remote clusters' kubeconfigs (ClusterID header). */
  readonly clusterId: string;
  readonly clusters: readonly RemoteCluster[];
  readonly trustDomainAliases: readonly string[];
  /** Istio ambient: callers allowed to send ImpersonatedIdentity (CA_TRUSTED_NODE_ACCOUNTS). */
  readonly trustedNodeAccounts: readonly NodeAccount[];
  readonly ttl: TtlPolicy;
  /** --max-renewal-age: how long renewals over mTLS keep an identity after its last token grant. */
  readonly maxRenewalAgeMs: number;
  /** The gRPC port's connection gate and per-connection stream cap. */
  readonly connections: ConnectionLimits & { readonly maxStreamsPerConnection: number };
  readonly devTokens: boolean;
  readonly jwks?: { readonly file?: string; readonly url?: string; readonly issuer: string };
  /** The Kubernetes authenticators' settings; `none` turns them off. */
  readonly kubernetes: Omit<KubernetesAuthOptions, 'mode' | 'audiences' | 'trustDomain' | 'clock' | 'log' | 'registry' | 'jwksRefetchCooldownMs'> & {
    readonly mode: 'none' | KubernetesAuthOptions['mode'];
  };
  readonly policy: { readonly allowNamespaces: readonly string[]; readonly denyNamespaces: readonly string[]; readonly denyIds: readonly string[] };
  readonly sds: boolean;
  readonly auditors: readonly string[];
  readonly admins: readonly string[];
  readonly retainMs: number;
  readonly checkpointEvery: number;
  readonly checkpointIntervalMs: number;
  readonly shutdownGraceMs: number;
  /** --workers: processes serving the gRPC port; 1 is one process with no cluster. */
  readonly workers: number;
  readonly logLevel: ServeSettings['log-level'];
  /** --injector: the agent-injection webhook's listen address and what it injects. */
  readonly injector?: { readonly listen: ListenAddress; readonly agentImage: string };
  /** Elect one replica (a Lease) for the singleton duties; `auto`: when running in a pod. */
  readonly leaderElection: 'auto' | 'on' | 'off';
  readonly leaderLeaseMs: number;
  /** SPIFFE federation: our bundle endpoint, and the peers we trust. */
  readonly federation: {
    readonly endpoint?: ListenAddress;
    readonly peers: readonly FederationPeer[];
    /** --federate-bundle as given: <td>=<file>. */
    readonly bootstrap: readonly string[];
    readonly inRootca: boolean;
  };
  /** --signer: the PKCS#11 URI of the token holding the intermediate's key (no PIN in it). */
  readonly signer?: string;
  readonly rotation: {
    readonly keysPollMs: number;
    readonly rootExpiryWarningMs: number;
    readonly caExpiryWarningMs: number;
    /** Lifetime of roots prepared through the admin API. */
    readonly rootTtlMs: number;
    /** Lifetime of intermediates made by auto-rotation. */
    readonly caTtlMs: number;
    readonly keyType: KeyType;
    readonly organization: string;
    readonly distributeBundle: 'auto' | 'on' | 'off';
  };
}

export interface RemoteCluster {
  readonly id: string;
  readonly kubeconfigPath: string;
}

export interface NodeAccount {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** The settings `meshca serve` accepts; the ledger and rotation own the defaults given here. */
export const SERVE_OPTIONS = {
  settings: [
    'keys', 'trust-domain', 'db', 'new-ledger', 'listen', 'http-listen', 'audience', 'namespace', 'cluster-domain', 'san', 'default-ttl', 'max-ttl', 'max-renewal-age',
    'dev-tokens', 'jwks-file', 'jwks-url', 'issuer', 'authn', 'kubeconfig', 'oidc-issuer', 'allow-legacy-tokens',
    'token-cache-ttl', 'token-cache-size', 'kube-qps', 'kube-burst', 'allow-namespaces', 'deny-namespaces', 'deny-ids',
    'sds', 'auditors', 'admins', 'retain', 'shutdown-grace', 'workers', 'max-connections', 'max-connections-per-peer', 'max-streams-per-connection', 'tls-handshake-timeout', 'log-level', 'key-type', 'org', 'signer', 'bundle-endpoint', 'federate-with', 'federate-bundle', 'federated-in-rootca',
    'keys-poll', 'root-expiry-warning', 'ca-expiry-warning', 'distribute-bundle', 'root-ttl', 'ca-ttl',
    'checkpoint-every', 'checkpoint-interval', 'cluster-id', 'cluster', 'trust-domain-aliases', 'trusted-node-accounts',
    'injector', 'injector-listen', 'agent-image', 'leader-election', 'leader-lease',
  ],
  defaults: {
    'leader-lease': DEFAULT_LEASE_DURATION_MS,
    'checkpoint-every': DEFAULT_CHECKPOINT_EVERY,
    'checkpoint-interval': DEFAULT_CHECKPOINT_INTERVAL_MS,
    'keys-poll': DEFAULT_KEYS_POLL_MS,
    'root-expiry-warning': DEFAULT_ROOT_EXPIRY_WARNING_MS,
    'ca-expiry-warning': DEFAULT_CA_EXPIRY_WARNING_MS,
  },
} as const satisfies CommandOptions;

export type ServeSettings = Settings<typeof SERVE_OPTIONS>;

/** The one place serve's settings become its configuration: cross-setting checks, then plain data. */
export function serveConfigFrom(v: ServeSettings): ServeConfig {
  if (v['trust-domain'] !== undefined) validateTrustDomain(v['trust-domain']);
  if (v['jwks-file'] && v['jwks-url']) throw new MeshcaError('BAD_CONFIG', '--jwks-file and --jwks-url are alternatives; give one');
  if (v['jwks-url'] !== undefined) requireHttps(v['jwks-url'], '--jwks-url');
  const jwksIssuer = v.issuer;
  if ((v['jwks-file'] || v['jwks-url']) && !jwksIssuer) throw new MeshcaError('BAD_CONFIG', '--issuer is required with --jwks-file/--jwks-url (the iss your tokens carry)');
  if (v.audience.length === 0) throw new MeshcaError('BAD_CONFIG', '--audience: give at least one token audience');
  if (v.authn === 'none' && v.cluster.length > 0) throw new MeshcaError('BAD_CONFIG', '--cluster needs --authn tokenreview, jwks or both (remote clusters review Kubernetes tokens)');
  if (v.authn === 'none' && v['trusted-node-accounts'].length > 0) {
    throw new MeshcaError('BAD_CONFIG', '--trusted-node-accounts needs --authn tokenreview, jwks or both (node agents authenticate with Kubernetes tokens)');
  }
  return Object.freeze({
    keysDir: v.keys,
    ...(v['trust-domain'] !== undefined ? { trustDomain: v['trust-domain'] } : {}),
    db: ledgerUrlOf(v),
    newLedger: v['new-ledger'],
    listen: v.listen,
    httpListen: v['http-listen'],
    audiences: v.audience,
    namespace: v.namespace,
    clusterDomain: v['cluster-domain'],
    extraDnsNames: v.san.filter((n) => isIP(n) === 0),
    extraIpAddresses: v.san.filter((n) => isIP(n) !== 0),
    clusterId: v['cluster-id'],
    clusters: parseClusters(v.cluster, v['cluster-id']),
    trustDomainAliases: v['trust-domain-aliases'].map((td) => {
      try {
        validateTrustDomain(td);
      } catch (err) {
        throw new MeshcaError('BAD_CONFIG', `--trust-domain-aliases: ${describeError(err)}`, { cause: err });
      }
      return td;
    }),
    trustedNodeAccounts: v['trusted-node-accounts'].map(parseNodeAccount),
    ttl: validateTtlPolicy({ defaultTtlMs: v['default-ttl'], maxTtlMs: v['max-ttl'] }),
    maxRenewalAgeMs: v['max-renewal-age'],
    connections: {
      maxConnections: atLeastOne(v['max-connections'], '--max-connections'),
      maxConnectionsPerPeer: atLeastOne(v['max-connections-per-peer'], '--max-connections-per-peer'),
      maxStreamsPerConnection: atLeastOne(v['max-streams-per-connection'], '--max-streams-per-connection'),
      handshakeTimeoutMs: atLeastOne(v['tls-handshake-timeout'], '--tls-handshake-timeout'),
    },
    devTokens: v['dev-tokens'],
    ...(jwksIssuer && (v['jwks-file'] || v['jwks-url'])
      ? { jwks: { ...(v['jwks-file'] ? { file: v['jwks-file'] } : {}), ...(v['jwks-url'] ? { url: v['jwks-url'] } : {}), issuer: jwksIssuer } }
      : {}),
    kubernetes: {
      mode: v.authn,
      ...(v.kubeconfig ? { kubeconfigPath: v.kubeconfig } : {}),
      ...(v['oidc-issuer'] ? { oidcIssuer: v['oidc-issuer'] } : {}),
      allowLegacyTokens: v['allow-legacy-tokens'],
      tokenCacheTtlMs: v['token-cache-ttl'],
      tokenCacheSize: v['token-cache-size'],
      kubeQps: v['kube-qps'],
      kubeBurst: v['kube-burst'],
    },
    policy: { allowNamespaces: v['allow-namespaces'], denyNamespaces: v['deny-namespaces'], denyIds: urisOf(v['deny-ids']) },
    sds: v.sds,
    federation: {
      ...(v['bundle-endpoint'] !== undefined ? { endpoint: parseListenAddress(v['bundle-endpoint'], '--bundle-endpoint') } : {}),
      peers: v['federate-with'].map(parseFederationPeer),
      bootstrap: v['federate-bundle'],
      inRootca: v['federated-in-rootca'],
    },
    auditors: urisOf(v.auditors),
    admins: urisOf(v.admins),
    retainMs: v.retain,
    checkpointEvery: v['checkpoint-every'],
    checkpointIntervalMs: v['checkpoint-interval'],
    shutdownGraceMs: v['shutdown-grace'],
    workers: parseWorkers(v.workers),
    logLevel: v['log-level'],
    ...(v.injector ? { injector: { listen: v['injector-listen'], agentImage: v['agent-image'] } } : {}),
    leaderElection: v['leader-election'],
    leaderLeaseMs: v['leader-lease'],
    ...(v.signer !== undefined ? { signer: v.signer } : {}),
    rotation: {
      keysPollMs: v['keys-poll'],
      rootExpiryWarningMs: v['root-expiry-warning'],
      caExpiryWarningMs: v['ca-expiry-warning'],
      rootTtlMs: v['root-ttl'],
      caTtlMs: v['ca-ttl'],
      keyType: v['key-type'],
      organization: v.org,
      distributeBundle: v['distribute-bundle'],
    },
  });
}

const CLUSTER_ID = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,251}[A-Za-z0-9])?$/;

/**
 * `--cluster <id>=<kubeconfig>`, or `--cluster <directory>`: every file in it is a kubeconfig named
 * by its cluster id — Istio's remote-secret layout (one key per cluster) mounted as a volume.
 * Ids are unique and never the local one.
 */
function parseClusters(entries: readonly string[], localId: string): RemoteCluster[] {
  if (!CLUSTER_ID.test(localId)) throw new MeshcaError('BAD_CONFIG', `--cluster-id: "${localId}" is not a cluster id (letters, digits, '-', '_', '.')`);
  const seen = new Set<string>([localId]);
  const named = entries.flatMap((entry): { id: string; kubeconfigPath: string; entry: string }[] => {
    const eq = entry.indexOf('=');
    if (eq > 0) return [{ id: entry.slice(0, eq), kubeconfigPath: entry.slice(eq + 1), entry }];
    return clustersInDirectory(entry);
  });
  return named.map(({ id, kubeconfigPath, entry }) => {
    if (!CLUSTER_ID.test(id) || kubeconfigPath === '') throw new MeshcaError('BAD_CONFIG', `--cluster: "${entry}" is not <cluster id>=<kubeconfig file> or a directory of kubeconfigs`);
    if (seen.has(id)) throw new MeshcaError('BAD_CONFIG', `--cluster: cluster "${id}" is named twice (or is --cluster-id, the local cluster)`);
    seen.add(id);
    return { id, kubeconfigPath };
  });
}

/** A Secret volume's files; its hidden `..data` links and dot files are not clusters. */
function clustersInDirectory(dir: string): { id: string; kubeconfigPath: string; entry: string }[] {
  const notADirectory = [{ id: '', kubeconfigPath: '', entry: dir }];
  try {
    if (!statSync(dir).isDirectory()) return notADirectory;
    const names = readdirSync(dir).filter((n) => !n.startsWith('.') && statSync(join(dir, n)).isFile()).sort();
    return names.map((id) => ({ id, kubeconfigPath: join(dir, id), entry: join(dir, id) }));
  } catch {
    return notADirectory;
  }
}

function parseNodeAccount(entry: string): NodeAccount {
  const [namespace, serviceAccount, ...rest] = entry.split('/');
  if (!namespace || !serviceAccount || rest.length > 0 || !isKubernetesNamespace(namespace) || !isKubernetesServiceAccount(serviceAccount)) {
    throw new MeshcaError('BAD_CONFIG', `--trusted-node-accounts: "${entry}" is not <namespace>/<service account>`);
  }
  return { namespace, serviceAccount };
}

/** More processes than this is a typo, not a machine. */
export const MAX_WORKERS = 256;

/** --workers: a whole number from 1 to MAX_WORKERS, or `auto` (the CPUs this process may use, its cgroup's CPU limit included). */
function parseWorkers(text: string): number {
  if (text === 'auto') return autoWorkers({ max: MAX_WORKERS });
  const n = /^[1-9][0-9]{0,2}$/.test(text) ? Number(text) : NaN;
  if (!(n <= MAX_WORKERS)) throw new MeshcaError('BAD_CONFIG', `--workers "${text}": give a whole number from 1 to ${MAX_WORKERS}, or auto (one per CPU this process may use)`);
  return n;
}

/** A limit of 0 would refuse everyone: always a mistake. */
function atLeastOne(n: number, flag: string): number {
  if (n < 1) throw new MeshcaError('BAD_CONFIG', `${flag} must be at least 1`);
  return n;
}

/** Keys that sign identities are fetched only over https: on plain http anyone on the path could swap them and mint any identity. */
function requireHttps(text: string, flag: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch (err) {
    throw new MeshcaError('BAD_CONFIG', `${flag} "${text}" is not a URL`, { cause: err });
  }
  if (url.protocol !== 'https:') {
    throw new MeshcaError('BAD_CONFIG', `${flag} ${url.origin}: must be an https URL (keys fetched over ${url.protocol.replace(/:$/, '')} can be swapped by anyone on the path, who could then mint any identity)`);
  }
}

/** --db, or the default beside the key directory; a Secret key store has no "beside", so it needs --db. */
function ledgerUrlOf(v: ServeSettings): string {
  if (isSecretKeyStore(v.keys) && v.db === undefined) {
    throw new MeshcaError('BAD_CONFIG', `--db is required with --keys ${v.keys}: name the ledger every replica shares (postgres://…), or sqlite:<path> for one replica`);
  }
  return ledgerUrlFor(v.db, v.keys);
}

/** Callers are matched on the canonical URI of an ID parsed at start-up. */
function urisOf(ids: readonly SpiffeId[]): readonly string[] {
  return ids.map((id) => id.uri);
}
