// The pieces `meshca serve` is assembled from that decide policy rather than plumbing: the
// embedded development CA, the authenticator chain, and the ledger's health for /readyz.

import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet } from 'jose';
import { createClusterRouter, createJwtAuthenticator, createMtlsAuthenticator, loadDevIssuer, type Authenticator } from '../authn/index.ts';
import { DEFAULT_TRUST_DOMAIN, inspectKeyDirectory, initCa } from '../ca/index.ts';
import { describeError, MeshcaError } from '../errors/index.ts';
import type { ClosableLedgerWriter } from '../ledger/index.ts';
import type { Logger, Registry } from '../observability/index.ts';
import { DEFAULT_CA_TTL_MS, DEFAULT_KEY_TYPE, DEFAULT_ROOT_TTL_MS, parseKeyType, type KeyCustody } from '../pki/index.ts';
import type { Clock } from '../time/index.ts';
import type { CaState } from './ca_state.ts';
import type { ServeConfig } from './config.ts';

/** The embedded default: an empty key directory gets a development CA, loudly. */
export async function ensureCa(config: ServeConfig, deps: { clock: Clock; log: Logger; devKeyType?: string; custody?: KeyCustody }): Promise<void> {
  if (inspectKeyDirectory(config.keysDir) !== 'empty') return;
  const result = await initCa({
    keysDir: config.keysDir,
    trustDomain: config.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    organization: 'meshca development CA',
    keyType: parseKeyType(deps.devKeyType ?? DEFAULT_KEY_TYPE),
    rootTtlMs: DEFAULT_ROOT_TTL_MS,
    caTtlMs: DEFAULT_CA_TTL_MS,
    nowMs: deps.clock.now(),
    force: false,
    ...(deps.custody ? { custody: deps.custody } : {}),
  });
  deps.log.warn(
    { keysDir: config.keysDir, rootKeyId: result.rootKeyId, caKeyId: result.caKeyId },
    `made a DEVELOPMENT CA in ${config.keysDir}/ because it was empty; for a real CA stop meshca and run ` +
      `"meshca ca init --keys ${config.keysDir} --external-root-cert <your-root.pem> --external-root-key <your-root-key.pem> --force", ` +
      `or copy your CA (root-cert.pem, ca-cert.pem, ca-key.pem, cert-chain.pem) into ${config.keysDir}/`,
  );
}

/** The authenticator chain, in order: mTLS renewal, development tokens, JWKS issuers, Kubernetes. */
export async function buildAuthenticators(
  config: ServeConfig,
  trustDomain: string,
  state: CaState,
  deps: { clock: Clock; log: Logger },
  registry: Registry,
): Promise<Authenticator[]> {
  const chain: Authenticator[] = [createMtlsAuthenticator({ issuers: () => state.issuers, trustDomain, clock: deps.clock })];
  if (config.devTokens) {
    const dev = await loadDevIssuer(config.keysDir, true);
    chain.push(createJwtAuthenticator({ name: 'dev-jwt', issuer: dev.issuer, audiences: config.audiences, keySet: dev.keySet, trustDomain, clock: deps.clock }));
    deps.log.warn('trusting development tokens from "meshca token mint" (--dev-tokens); turn this off in production with --dev-tokens=false');
  }
  if (config.jwks) {
    let keySet;
    if (config.jwks.file) {
      try {
        keySet = createLocalJWKSet(JSON.parse(readFileSync(config.jwks.file, 'utf8')));
      } catch (err) {
        throw new MeshcaError('BAD_CONFIG', `--jwks-file ${config.jwks.file}: not a readable JWK set`, { cause: err });
      }
    } else {
      keySet = createRemoteJWKSet(new URL(config.jwks.url!), { timeoutDuration: 5000, cooldownDuration: 30_000 });
    }
    chain.push(createJwtAuthenticator({ name: 'jwt', issuer: config.jwks.issuer, audiences: config.audiences, keySet, trustDomain, clock: deps.clock }));
  }
  const k8s = config.kubernetes;
  const mode = k8s.mode;
  if (mode !== 'none') {
    // Loaded here, not at start-up: the Kubernetes client is most of a cold start.
    const { createKubernetesAuthenticators } = await import('../authn/kubernetes/index.ts');
    // One authenticator per cluster (own cache, own rate limit); the ClusterID header picks it.
    const forCluster = (kubeconfigPath: string | undefined, oidcIssuer: string | undefined): Authenticator => {
      const [authenticator] = createKubernetesAuthenticators({
        mode,
        audiences: config.audiences,
        trustDomain,
        ...(kubeconfigPath ? { kubeconfigPath } : {}),
        ...(oidcIssuer ? { oidcIssuer } : {}),
        allowLegacyTokens: k8s.allowLegacyTokens,
        tokenCacheTtlMs: k8s.tokenCacheTtlMs,
        tokenCacheSize: k8s.tokenCacheSize,
        kubeQps: k8s.kubeQps,
        kubeBurst: k8s.kubeBurst,
        clock: deps.clock,
        log: deps.log,
        registry,
      });
      return authenticator!;
    };
    const clusters = new Map<string, Authenticator>([[config.clusterId, forCluster(k8s.kubeconfigPath, k8s.oidcIssuer)]]);
    // A remote cluster's issuer is discovered from its own API server (--oidc-issuer is the local one's).
    for (const remote of config.clusters) clusters.set(remote.id, forCluster(remote.kubeconfigPath, undefined));
    chain.push(createClusterRouter({ localClusterId: config.clusterId, clusters }));
  }
  return chain;
}

/**
 * Remembers whether the last append failed, so /readyz can tell a load balancer to go elsewhere.
 * A failure the ledger's own health check explains (its file deleted under it) is not remembered:
 * `health()` reports it live, so /readyz recovers as soon as the file is back, before any append.
 */
export function watchLedger(
  inner: ClosableLedgerWriter,
  health: () => string | undefined = () => undefined,
  observe: (seconds: number, ok: boolean) => void = () => undefined,
): ClosableLedgerWriter & { readonly failing: string | undefined; health(): string | undefined } {
  let failing: string | undefined;
  return {
    get failing() {
      return failing;
    },
    health,
    async append(event) {
      // Wall-clock on purpose: this measures the database, which knows no injected clock.
      const started = performance.now();
      try {
        const result = await inner.append(event);
        failing = undefined;
        observe((performance.now() - started) / 1000, true);
        return result;
      } catch (err) {
        observe((performance.now() - started) / 1000, false);
        if (health() === undefined) failing = describeError(err);
        throw err;
      }
    },
    close: () => inner.close(),
  };
}
