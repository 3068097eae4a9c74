// Assembles `meshca serve`: key directory → verified authority → ledger → authenticators →
// gRPC over TLS (CreateCertificate) and the HTTP side port. Shuts down gracefully.

import * as grpc from '@grpc/grpc-js';
import type { Authenticator } from '../authn/index.ts';
import { createIdentityPolicy } from '../authn/index.ts';
import { createAuditService } from '../audit/index.ts';
import { createAdminService } from '../admin/index.ts';
import { createBundleRoute, startBundleDistribution } from '../distribution/index.ts';
import { authorityFromSnapshot, DirectoryKeyStore, rotationPolicy, startRotationRuntime, type RotationContext } from '../rotation/index.ts';
import { DEFAULT_LEAF_TTL_MS, SvidIssuer } from '../ca/index.ts';
import { MeshcaError } from '../errors/index.ts';
import { memoryLedger, openLedger, startRetention, type ClosableLedgerWriter, type Ledger } from '../ledger/index.ts';
import { createRegistry, type Logger, type Registry } from '../observability/index.ts';
import { DEFAULT_ROOT_TTL_MS, parseKeyType } from '../pki/index.ts';
import type { Clock } from '../time/index.ts';
import { bindGrpc, closeHttp, createHttpServer, ISTIO_CA_SERVICE, listenHttp, serviceDefinition, type ReadinessCheck, type Route } from '../transport/index.ts';
import { buildAuthenticators, ensureCa, watchLedger } from './bootstrap.ts';
import { authenticateCall, authenticateCaller, createCaServiceHandlers, type IdentityPolicy } from './ca_service.ts';
import { createCaDirectSds } from './ca_direct_sds.ts';
import { CaState } from './ca_state.ts';
import type { ServeConfig } from './config.ts';
import { createCaMetrics, type CaMetrics } from './metrics.ts';
import { servingDnsNames, ServingIdentity } from './serving_identity.ts';

/** gRPC requests bigger than this are refused before parsing (RESOURCE_EXHAUSTED). */
export const MAX_REQUEST_BYTES = 64 * 1024;

export interface ServeDeps {
  readonly clock: Clock;
  readonly log: Logger;
  /** Extension points used by later features (Kubernetes authn, SDS, audit, rotation). */
  readonly extraAuthenticators?: (ctx: ServerContext) => Authenticator[];
  readonly policy?: IdentityPolicy;
  readonly registerServices?: (server: grpc.Server, ctx: ServerContext) => void;
  readonly routes?: (ctx: ServerContext) => Record<string, Route>;
  readonly readiness?: (ctx: ServerContext) => Record<string, ReadinessCheck>;
  /** Key type for an embedded development CA. */
  readonly devKeyType?: string;
}

export interface ServerContext {
  readonly config: ServeConfig;
  readonly state: CaState;
  readonly issuer: SvidIssuer;
  readonly ledger: ClosableLedgerWriter;
  /** The queryable ledger; absent only for `--db memory:` (benchmarks). */
  readonly fullLedger?: Ledger;
  readonly registry: Registry;
  readonly metrics: CaMetrics;
  readonly authenticators: () => readonly Authenticator[];
  readonly policy: IdentityPolicy;
  readonly clock: Clock;
  readonly log: Logger;
}

export interface RunningCaServer {
  readonly grpcAddress: string;
  readonly httpAddress: string;
  readonly context: ServerContext;
  /** Stops accepting, lets calls in flight finish for up to `graceMs`, then closes everything. */
  close(graceMs?: number): Promise<void>;
}

export async function startCaServer(config: ServeConfig, deps: ServeDeps): Promise<RunningCaServer> {
  const { clock, log } = deps;
  await ensureCa(config, deps);
  // The key store as rotation keeps it (the cacerts files when never rotated), verified before use.
  const keyStore = new DirectoryKeyStore(config.keysDir);
  const loaded = authorityFromSnapshot(keyStore.snapshot(clock.now()), clock.now());
  const state = new CaState(loaded.authority, loaded.extraIssuers);
  // `memory:` keeps nothing and cannot be audited: for benchmarks only.
  const fullLedger = config.db === 'memory:' ? undefined : await openLedger(config.db, {
        clock,
        keysDir: config.keysDir,
        checkpointEvery: config.checkpointEvery,
        checkpointIntervalMs: config.checkpointIntervalMs,
      });
  const rawLedger: ClosableLedgerWriter = fullLedger ?? memoryLedger();
  const ledger = watchLedger(rawLedger);
  const retention = fullLedger ? startRetention(fullLedger, config.retainMs, clock, log) : undefined;
  if (!fullLedger) log.warn('--db memory: issuance records are kept in memory only and lost on exit; use sqlite: or postgres:// in any real deployment');
  const registry = createRegistry();
  const metrics = createCaMetrics(registry);
  const issuer = new SvidIssuer({ authority: () => state.authority, ledger, clock, ttl: config.ttl });

  const chain = await buildAuthenticators(config, state, deps, registry);
  const identityPolicy = createIdentityPolicy(config.policy);
  const policy: IdentityPolicy = deps.policy ?? ((caller) => identityPolicy.check(caller));
  let ctx: ServerContext = {
    config, state, issuer, ledger: rawLedger, ...(fullLedger ? { fullLedger } : {}), registry, metrics, policy, clock, log,
    authenticators: () => chain,
  };
  if (deps.extraAuthenticators) chain.push(...deps.extraAuthenticators(ctx));
  ctx = Object.freeze(ctx);

  const recordExpiry = () => {
    metrics.caCertExpiry.set({ cert: 'root' }, Date.parse(state.authority.root.validTo) / 1000);
    metrics.caCertExpiry.set({ cert: 'intermediate' }, state.authority.notAfterMs / 1000);
  };
  recordExpiry();
  state.subscribe(recordExpiry);

  const serving = new ServingIdentity({
    state,
    dnsNames: servingDnsNames(config.namespace, config.extraDnsNames),
    clock,
    onIssued: (cert) => {
      metrics.caCertExpiry.set({ cert: 'serving' }, cert.notAfterMs / 1000);
      log.info({ serial: cert.serialHex, notAfter: new Date(cert.notAfterMs).toISOString() }, 'issued the CA serving certificate');
    },
    onError: (err) => log.error({ err }, 'could not renew the CA serving certificate'),
  });
  await serving.start();

  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_REQUEST_BYTES,
    'grpc.max_concurrent_streams': 1000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  server.addService(serviceDefinition(ISTIO_CA_SERVICE), createCaServiceHandlers({ issuer, authenticators: ctx.authenticators, policy, clock, log, metrics }));
  if (fullLedger) {
    const audit = createAuditService({ ledger: fullLedger, auditors: config.auditors, authenticate: (call) => authenticateCaller(call as never, ctx), clock, log });
    server.addService(audit.service, audit.handlers);
  }
  const caDirectSds = config.sds
    ? createCaDirectSds({
        issuer,
        authenticate: (_md, call) => authenticateCall(call as never, ctx),
        bundlePem: () => state.bundlePem,
        clock,
        log,
        ttlMs: config.ttl.defaultTtlMs,
      })
    : undefined;
  if (caDirectSds) {
    caDirectSds.register(server);
    // Push a rotated bundle at once rather than at the next periodic refresh.
    state.subscribe(() => caDirectSds.refreshBundle());
    log.warn('CA-direct SDS is on (--sds): the CA makes and holds private keys for proxies that use it; prefer meshca agent, which keeps keys in the pod');
  }
  const policyOfRotation = rotationPolicy(config.ttl.maxTtlMs);
  const rotationContext = (actor: string): RotationContext => ({
    store: keyStore, clock, policy: policyOfRotation, ledger, actor, organization: config.rotation.organization,
    rootTtlMs: DEFAULT_ROOT_TTL_MS, caTtlMs: config.rotation.caTtlMs, trustDomain: config.trustDomain,
  });
  const rotation = startRotationRuntime({
    store: keyStore, state, startVersion: loaded.version, clock, log, registry, ledger, policy: policyOfRotation,
    organization: config.rotation.organization, trustDomain: config.trustDomain, caTtlMs: config.rotation.caTtlMs, rootTtlMs: DEFAULT_ROOT_TTL_MS,
    keyType: parseKeyType(config.rotation.keyType), autoRotateIntermediates: true, pollMs: config.rotation.keysPollMs,
    rootExpiryWarningMs: config.rotation.rootExpiryWarningMs, caExpiryWarningMs: config.rotation.caExpiryWarningMs,
  });
  const admin = createAdminService({
    admins: config.admins, authenticate: (call) => authenticateCaller(call as never, ctx), rotation: rotationContext,
    defaultKeyType: parseKeyType(config.rotation.keyType), afterChange: () => void rotation.reload(), ...(fullLedger ? { ledger: fullLedger } : {}), clock, log,
  });
  server.addService(admin.service, admin.handlers);
  deps.registerServices?.(server, ctx);

  const creds = grpc.experimental.createCertificateProviderServerCredentials(serving, serving, false);
  const grpcAddress = await bindGrpc(server, config.listen, '--listen', creds);

  const readiness: Record<string, ReadinessCheck> = {
    keys: () => (clock.now() < state.authority.notAfterMs ? { ok: true } : { ok: false, reason: 'the issuing CA certificate has expired' }),
    serving: () => (serving.notAfterMs && clock.now() < serving.notAfterMs ? { ok: true } : { ok: false, reason: 'no valid serving certificate' }),
    chain: () => rotation.readiness(),
    ledger: () => (ledger.failing ? { ok: false, reason: `the ledger cannot record (${ledger.failing}); issuance is refused until it can` } : { ok: true }),
    ...deps.readiness?.(ctx),
  };
  const bundleRoute = createBundleRoute(() => ({ rootsPem: state.bundlePem, sequence: rotation.version }));
  const http = createHttpServer({ registry, readiness, routes: { '/bundle': bundleRoute, ...deps.routes?.(ctx) } });
  const httpAddress = await listenHttp(http, config.httpListen, '--http-listen');

  const distributor = await startBundleDistribution(config.rotation.distributeBundle, config.kubernetes.kubeconfigPath, {
    namespace: config.namespace, bundlePem: () => state.bundlePem.join(''), onBundleChange: (l) => state.subscribe(() => l()), clock, log, registry,
  });
  await ledger.append({ type: 'ca', timeMs: clock.now(), event: 'server-start', actor: 'meshca serve', detail: { grpc: grpcAddress, http: httpAddress, issuerKeyId: state.authority.keyId, rootKeyId: state.authority.rootKeyId } });
  log.info(
    {
      grpc: grpcAddress,
      http: httpAddress,
      trustDomain: config.trustDomain,
      issuerKeyId: state.authority.keyId,
      rootKeyId: state.authority.rootKeyId,
      defaultTtlSeconds: (config.ttl.defaultTtlMs ?? DEFAULT_LEAF_TTL_MS) / 1000,
    },
    'meshca serve listening',
  );

  let closing: Promise<void> | undefined;
  return {
    grpcAddress,
    httpAddress,
    context: ctx,
    close(graceMs = config.shutdownGraceMs) {
      closing ??= (async () => {
        log.info({ graceMs }, 'shutting down: no new requests; finishing those in flight');
        const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
        const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
        if ((await Promise.race([drained, timer])) === 'timeout') {
          log.warn('requests still in flight after the grace period; closing them');
          server.forceShutdown();
        }
        serving.stop();
        retention?.stop();
        caDirectSds?.close();
        rotation.stop();
        await distributor?.stop();
        await closeHttp(http);
        await ledger.append({ type: 'ca', timeMs: clock.now(), event: 'server-stop', actor: 'meshca serve', detail: {} }).catch(() => undefined);
        await ledger.close();
        log.info('stopped');
      })();
      return closing;
    },
  };
}
