// `meshca serve` configuration: built once from validated settings, frozen, passed down.

import { validateTtlPolicy, type TtlPolicy } from '../ca/index.ts';
import type { KubernetesAuthOptions } from '../authn/index.ts';
import type { Values } from '../config/index.ts';
import { MeshcaError } from '../errors/index.ts';
import { parseSpiffeId, validateTrustDomain } from '../spiffe/index.ts';
import { parseListenAddress } from '../transport/index.ts';

export interface ServeConfig {
  readonly keysDir: string;
  readonly trustDomain: string;
  readonly db: string;
  readonly listen: string;
  readonly httpListen: string;
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
  readonly logLevel: string;
  readonly rotation: {
    readonly keysPollMs: number;
    readonly rootExpiryWarningMs: number;
    readonly caExpiryWarningMs: number;
    /** Lifetime of intermediates made by auto-rotation. */
    readonly caTtlMs: number;
    readonly keyType: string;
    readonly organization: string;
    readonly distributeBundle: 'auto' | 'on' | 'off';
  };
}

export function serveConfigFrom(v: Values): ServeConfig {
  validateTrustDomain(v['trust-domain']!);
  parseListenAddress(v.listen!, '--listen');
  parseListenAddress(v['http-listen']!, '--http-listen');
  if (v['jwks-file'] && v['jwks-url']) throw new MeshcaError('BAD_CONFIG', '--jwks-file and --jwks-url are alternatives; give one');
  if ((v['jwks-file'] || v['jwks-url']) && !v.issuer) throw new MeshcaError('BAD_CONFIG', '--issuer is required with --jwks-file/--jwks-url (the iss your tokens carry)');
  for (const id of [...(v.auditors ?? []), ...(v.admins ?? []), ...(v['deny-ids'] ?? [])]) parseSpiffeId(id);
  const ttl = validateTtlPolicy({ defaultTtlMs: v['default-ttl']!, maxTtlMs: v['max-ttl']! });
  const mode = v.authn as ServeConfig['kubernetes']['mode'];
  return Object.freeze({
    keysDir: v.keys!,
    trustDomain: v['trust-domain']!,
    db: v.db!,
    listen: v.listen!,
    httpListen: v['http-listen']!,
    audience: v.audience!,
    namespace: v.namespace!,
    extraDnsNames: v.san ?? [],
    ttl,
    devTokens: v['dev-tokens']!,
    ...(v['jwks-file'] || v['jwks-url']
      ? { jwks: { ...(v['jwks-file'] ? { file: v['jwks-file'] } : {}), ...(v['jwks-url'] ? { url: v['jwks-url'] } : {}), issuer: v.issuer! } }
      : {}),
    kubernetes: {
      mode,
      ...(v.kubeconfig ? { kubeconfigPath: v.kubeconfig } : {}),
      ...(v['oidc-issuer'] ? { oidcIssuer: v['oidc-issuer'] } : {}),
      allowLegacyTokens: v['allow-legacy-tokens']!,
      tokenCacheTtlMs: v['token-cache-ttl']!,
      tokenCacheSize: v['token-cache-size']!,
      kubeQps: v['kube-qps']!,
      kubeBurst: v['kube-burst']!,
    },
    policy: { allowNamespaces: v['allow-namespaces'] ?? [], denyNamespaces: v['deny-namespaces'] ?? [], denyIds: v['deny-ids'] ?? [] },
    sds: v.sds!,
    auditors: v.auditors ?? [],
    admins: v.admins ?? [],
    retainMs: v.retain ?? 0,
    checkpointEvery: v['checkpoint-every'] ?? 1000,
    checkpointIntervalMs: v['checkpoint-interval'] ?? 60_000,
    shutdownGraceMs: v['shutdown-grace']!,
    logLevel: v['log-level']!,
    rotation: {
      keysPollMs: v['keys-poll'] ?? 1000,
      rootExpiryWarningMs: v['root-expiry-warning'] ?? 30 * 86_400_000,
      caExpiryWarningMs: v['ca-expiry-warning'] ?? 7 * 86_400_000,
      caTtlMs: v['ca-ttl'] ?? 365 * 86_400_000,
      keyType: v['key-type'] ?? 'ec-p256',
      organization: v.org ?? 'meshca',
      distributeBundle: (v['distribute-bundle'] ?? 'auto') as 'auto' | 'on' | 'off',
    },
  });
}

export const SERVE_SETTINGS = [
  'keys', 'trust-domain', 'db', 'listen', 'http-listen', 'audience', 'namespace', 'san', 'default-ttl', 'max-ttl',
  'dev-tokens', 'jwks-file', 'jwks-url', 'issuer', 'authn', 'kubeconfig', 'oidc-issuer', 'allow-legacy-tokens',
  'token-cache-ttl', 'token-cache-size', 'kube-qps', 'kube-burst', 'allow-namespaces', 'deny-namespaces', 'deny-ids',
  'sds', 'auditors', 'admins', 'retain', 'shutdown-grace', 'log-level', 'key-type', 'org',
  'keys-poll', 'root-expiry-warning', 'ca-expiry-warning', 'distribute-bundle', 'ca-ttl',
  'checkpoint-every', 'checkpoint-interval',
] as const;
