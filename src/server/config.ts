// `meshca serve` configuration: built once from validated settings, frozen, passed down.

import { validateTtlPolicy, type TtlPolicy } from '../ca/index.ts';
import type { KubernetesAuthOptions } from '../authn/index.ts';
import type { CommandOptions, Settings } from '../config/index.ts';
import { MeshcaError } from '../errors/index.ts';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_INTERVAL_MS } from '../ledger/index.ts';
import type { KeyType } from '../pki/index.ts';
import { DEFAULT_CA_EXPIRY_WARNING_MS, DEFAULT_KEYS_POLL_MS, DEFAULT_ROOT_EXPIRY_WARNING_MS } from '../rotation/index.ts';
import { validateTrustDomain, type SpiffeId } from '../spiffe/index.ts';
import type { ListenAddress } from '../transport/index.ts';

export interface ServeConfig {
  readonly keysDir: string;
  /** --trust-domain if given: names the trust domain for a new CA, and must agree with an existing one. */
  readonly trustDomain?: string;
  readonly db: string;
  readonly listen: ListenAddress;
  readonly httpListen: ListenAddress;
  readonly audience: string;
  readonly namespace: string;
  readonly extraDnsNames: readonly string[];
  readonly ttl: TtlPolicy;
  readonly devTokens: boolean;
  readonly jwks?: { readonly file?: string; readonly url?: string; readonly issuer: string };
  /** The Kubernetes authenticators' settings; `none` turns them off. */
  readonly kubernetes: Omit<KubernetesAuthOptions, 'mode' | 'audience' | 'trustDomain' | 'clock' | 'log' | 'registry' | 'jwksRefetchCooldownMs'> & {
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
  readonly logLevel: ServeSettings['log-level'];
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

/** The settings `meshca serve` accepts; the ledger and rotation own the defaults given here. */
export const SERVE_OPTIONS = {
  settings: [
    'keys', 'trust-domain', 'db', 'listen', 'http-listen', 'audience', 'namespace', 'san', 'default-ttl', 'max-ttl',
    'dev-tokens', 'jwks-file', 'jwks-url', 'issuer', 'authn', 'kubeconfig', 'oidc-issuer', 'allow-legacy-tokens',
    'token-cache-ttl', 'token-cache-size', 'kube-qps', 'kube-burst', 'allow-namespaces', 'deny-namespaces', 'deny-ids',
    'sds', 'auditors', 'admins', 'retain', 'shutdown-grace', 'log-level', 'key-type', 'org',
    'keys-poll', 'root-expiry-warning', 'ca-expiry-warning', 'distribute-bundle', 'root-ttl', 'ca-ttl',
    'checkpoint-every', 'checkpoint-interval',
  ],
  defaults: {
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
  const jwksIssuer = v.issuer;
  if ((v['jwks-file'] || v['jwks-url']) && !jwksIssuer) throw new MeshcaError('BAD_CONFIG', '--issuer is required with --jwks-file/--jwks-url (the iss your tokens carry)');
  return Object.freeze({
    keysDir: v.keys,
    ...(v['trust-domain'] !== undefined ? { trustDomain: v['trust-domain'] } : {}),
    db: v.db,
    listen: v.listen,
    httpListen: v['http-listen'],
    audience: v.audience,
    namespace: v.namespace,
    extraDnsNames: v.san,
    ttl: validateTtlPolicy({ defaultTtlMs: v['default-ttl'], maxTtlMs: v['max-ttl'] }),
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
    auditors: urisOf(v.auditors),
    admins: urisOf(v.admins),
    retainMs: v.retain,
    checkpointEvery: v['checkpoint-every'],
    checkpointIntervalMs: v['checkpoint-interval'],
    shutdownGraceMs: v['shutdown-grace'],
    logLevel: v['log-level'],
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

/** Callers are matched on the canonical URI of an ID parsed at start-up. */
function urisOf(ids: readonly SpiffeId[]): readonly string[] {
  return ids.map((id) => id.uri);
}
