// Public face of src/authn/kubernetes: Kubernetes service-account token authentication for
// `meshca serve` (--authn tokenreview|jwks|both). Builds authenticators; never logs a token.

import { describeError, MeshcaError } from '../../errors/index.ts';
import { KubeClient, loadInClusterConfig, loadKubeconfigFile, type KubeConfig } from '../../kube/index.ts';
import type { Logger, Registry } from '../../observability/index.ts';
import type { Clock } from '../../time/index.ts';
import type { Authenticator } from '../types.ts';
import { createJwksAuthenticator, createJwksVerifier } from './jwks.ts';
import { kubeAuthMetrics } from './metrics.ts';
import { createIssuerFetch, type IssuerTrust } from './oidc.ts';
import { createTokenBucket } from './rate_limit.ts';
import { createTokenReviewClient } from './review_client.ts';
import { createTokenReviewAuthenticator } from './tokenreview.ts';
import { startPodIndex, type PodIndex } from './pod_index.ts';

export { API_POOL_MAX_AGE_MS, createApiConnectionPool, type ApiConnectionPool } from '../../kube/index.ts';
export { type JwksVerdict, type JwksVerifier } from './jwks.ts';
export { type RateLimiter } from './rate_limit.ts';
export { ReviewCache } from './token_cache.ts';
export { type KubeAuthMetrics } from './metrics.ts';
export { POD_WATCH_RESTART_MS, type PodFacts, type PodIndex } from './pod_index.ts';

export type KubernetesAuthMode = 'tokenreview' | 'jwks' | 'both';

export interface KubernetesAuthOptions {
  readonly mode: KubernetesAuthMode;
  /** Accepted token audiences (any one). */
  readonly audiences: readonly string[];
  readonly trustDomain: string;
  /** Absent: in-cluster configuration (the pod's service account). */
  readonly kubeconfigPath?: string;
  /** Absent: discovery starts at the API server (its /.well-known/openid-configuration). */
  readonly oidcIssuer?: string;
  readonly allowLegacyTokens: boolean;
  readonly tokenCacheTtlMs: number;
  readonly tokenCacheSize: number;
  readonly kubeQps: number;
  readonly kubeBurst: number;
  readonly clock: Clock;
  readonly log: Logger;
  readonly registry: Registry;
  /** Tests shorten this; production keeps the default (10 s). */
  readonly jwksRefetchCooldownMs?: number;
}

function loadKubeConfig(path: string | undefined): KubeConfig {
  if (!path) return loadInClusterConfig();
  try {
    return loadKubeconfigFile(path);
  } catch (err) {
    throw new MeshcaError('BAD_CONFIG', `kubeconfig: cannot load ${path}: ${describeError(err)}`, { cause: err });
  }
}

function clusterCaOf(kc: KubeConfig): string | undefined {
  try {
    return kc.clusterCaPem();
  } catch {
    return undefined;
  }
}

async function issuerTrustOf(kc: KubeConfig | undefined): Promise<IssuerTrust> {
  if (!kc) return {};
  const headers = await kc.auth.headers();
  const ca = clusterCaOf(kc);
  return { ...(ca ? { clusterCaPem: ca } : {}), apiServer: { origin: new URL(kc.server).origin, headers } };
}

function validate(opts: KubernetesAuthOptions): void {
  if (opts.audiences.length === 0 || opts.audiences.some((a) => a === '')) throw new MeshcaError('BAD_CONFIG', 'audience: must not be empty');
  if (!Number.isInteger(opts.tokenCacheSize) || opts.tokenCacheSize < 1) throw new MeshcaError('BAD_CONFIG', `token-cache-size: ${opts.tokenCacheSize} must be a whole number of at least 1`);
  if (!(opts.tokenCacheTtlMs >= 0)) throw new MeshcaError('BAD_CONFIG', `token-cache-ttl: ${opts.tokenCacheTtlMs}ms must not be negative`);
  if (opts.oidcIssuer !== undefined && !/^https:\/\/[^/]/.test(opts.oidcIssuer)) throw new MeshcaError('BAD_CONFIG', `oidc-issuer: "${opts.oidcIssuer}" must be an https URL`);
}

/** The pods of one cluster (its kubeconfig, or in-cluster), watched for node authorization. */
export function startClusterPodIndex(opts: { kubeconfigPath?: string; clock: Clock; log: Logger }): PodIndex {
  return startPodIndex({ kubeConfig: loadKubeConfig(opts.kubeconfigPath), clock: opts.clock, log: opts.log.child({ component: 'pod-index' }) });
}

/**
 * The authenticators for `--authn`: `tokenreview` → [TokenReview]; `jwks` → [JWKS];
 * `both` → [JWKS first, TokenReview for what JWKS cannot decide] as one authenticator.
 * Throws BAD_CONFIG (naming the setting) on bad options or a missing kubeconfig.
 */
export function createKubernetesAuthenticators(opts: KubernetesAuthOptions): Authenticator[] {
  validate(opts);
  const metrics = kubeAuthMetrics(opts.registry);
  const log = opts.log.child({ component: 'authn-kubernetes' });
  // JWKS with an explicit issuer can run without any API access; everything else needs it.
  const needsApi = opts.mode !== 'jwks' || opts.oidcIssuer === undefined || opts.kubeconfigPath !== undefined;
  const kc = needsApi ? loadKubeConfig(opts.kubeconfigPath) : undefined;

  const tokenReview = () =>
    createTokenReviewAuthenticator({
      audiences: opts.audiences,
      trustDomain: opts.trustDomain,
      allowLegacyTokens: opts.allowLegacyTokens,
      tokenCacheTtlMs: opts.tokenCacheTtlMs,
      tokenCacheSize: opts.tokenCacheSize,
      client: createTokenReviewClient({
        api: new KubeClient(kc!, { clock: opts.clock, connections: opts.kubeBurst }),
        limiter: createTokenBucket({ qps: opts.kubeQps, burst: opts.kubeBurst, clock: opts.clock }),
        clock: opts.clock,
        log,
        metrics,
      }),
      clock: opts.clock,
      log,
      metrics,
    });

  const jwks = () =>
    createJwksVerifier({
      discoveryBase: opts.oidcIssuer ?? kc!.server,
      requireIssuer: opts.oidcIssuer !== undefined,
      audiences: opts.audiences,
      trustDomain: opts.trustDomain,
      // Read per fetch (fetches are rare): in-cluster token files rotate under us.
      fetchIssuer: async (url, init) => createIssuerFetch(await issuerTrustOf(kc))(url, init),
      clock: opts.clock,
      log,
      ...(opts.jwksRefetchCooldownMs !== undefined ? { refetchCooldownMs: opts.jwksRefetchCooldownMs } : {}),
    });

  switch (opts.mode) {
    case 'tokenreview':
      return [tokenReview()];
    case 'jwks':
      return [createJwksAuthenticator(jwks())];
    case 'both':
      return [createJwksAuthenticator(jwks(), { tokenReview: tokenReview(), log })];
    default:
      throw new MeshcaError('BAD_CONFIG', `authn: "${String(opts.mode)}" is not one of tokenreview, jwks, both`);
  }
}
