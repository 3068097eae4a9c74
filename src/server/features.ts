// The features `meshca serve` is made of. Each starts from the server context and returns what it
// adds to the gRPC server and the HTTP port and how it stops; serve stops them in reverse order.

import * as grpc from '@grpc/grpc-js';
import { createAdminService, createDenyListService } from '../admin/index.ts';
import { createAuditService } from '../audit/index.ts';
import { createBundleRoute, startBundleDistribution, startLeadership, type Leadership } from '../distribution/index.ts';
import { startRetention } from '../ledger/index.ts';
import { rotationPolicy, startRotationRuntime, type RotationContext, type RotationRuntime } from '../rotation/index.ts';
import { ISTIO_CA_SERVICE, serviceDefinition, type ReadinessCheck, type Route } from '../transport/index.ts';
import { connectionRefusalReporter } from './connection_refusals.ts';
import { createCaDirectSds } from './ca_direct_sds.ts';
import { authenticateCall, authorizeCaller, createCaServiceHandlers } from './ca_service.ts';
import { doesSingletonDuties, type CaContext } from './context.ts';
import { FederatedBundleStore, Federation, readBootstrapBundle, startBundleEndpoint, type BundleEndpoint } from '../federation/index.ts';
import { createCsrPem, generateKeyPair } from '../pki/index.ts';
import { createSdsMetrics } from '../sds/index.ts';
import { kubernetesSpiffeId } from '../spiffe/index.ts';
import type { NodeAuthorizer } from '../authn/index.ts';
import { servingDnsNames, servingIpAddresses, ServingIdentity } from './serving_identity.ts';

export interface Feature {
  /** Each adds one gRPC service to the CA's server. */
  readonly services?: ReadonlyArray<(server: grpc.Server) => void>;
  readonly routes?: Readonly<Record<string, Route>>;
  readonly readiness?: Readonly<Record<string, ReadinessCheck>>;
  /** Called once at shutdown, after both ports have closed. */
  readonly stop?: () => void | Promise<void>;
}

/** istio.v1.auth.IstioCertificateService/CreateCertificate, and the CA certificates' expiry metric. */
export function createCertificateFeature(ctx: CaContext, nodeAuthorizer?: NodeAuthorizer, federatedRoots?: () => readonly string[]): Feature {
  const { state, metrics, clock } = ctx;
  const recordExpiry = () => {
    metrics.caCertExpiry.set({ cert: 'root' }, Date.parse(state.authority.root.validTo) / 1000);
    metrics.caCertExpiry.set({ cert: 'intermediate' }, state.authority.notAfterMs / 1000);
  };
  recordExpiry();
  const unsubscribe = state.subscribe(recordExpiry);
  const handlers = createCaServiceHandlers({ issuer: ctx.issuer, authenticators: ctx.authenticators, policy: ctx.policy, clock, log: ctx.log, metrics, ...(nodeAuthorizer ? { nodeAuthorizer } : {}), ...(federatedRoots ? { federatedRoots } : {}) });
  return {
    services: [(server) => server.addService(serviceDefinition(ISTIO_CA_SERVICE), handlers)],
    readiness: { keys: () => (clock.now() < state.authority.notAfterMs ? { ok: true } : { ok: false, reason: 'the issuing CA certificate has expired' }) },
    stop: () => void unsubscribe(),
  };
}

/** The CA's own TLS certificate, issued before the gRPC port binds; `credentials` serve it. */
export async function servingIdentityFeature(ctx: CaContext): Promise<Feature & { readonly credentials: grpc.ServerCredentials; readonly identity: ServingIdentity }> {
  const { config, clock, log } = ctx;
  const serving = new ServingIdentity({
    issuer: ctx.issuer,
    state: ctx.state,
    dnsNames: servingDnsNames(config.namespace, config.extraDnsNames, config.clusterDomain, config.injector !== undefined),
    ipAddresses: servingIpAddresses(config.extraIpAddresses),
    clock,
    onIssued: (cert) => {
      ctx.metrics.caCertExpiry.set({ cert: 'serving' }, cert.notAfterMs / 1000);
      log.info({ serial: cert.serialHex, notAfter: new Date(cert.notAfterMs).toISOString() }, 'issued the CA serving certificate');
    },
    onError: (err) => log.error({ err }, 'could not renew the CA serving certificate'),
  });
  await serving.start();
  return {
    credentials: grpc.experimental.createCertificateProviderServerCredentials(serving, serving, false),
    identity: serving,
    readiness: { serving: () => (serving.notAfterMs && clock.now() < serving.notAfterMs ? { ok: true } : { ok: false, reason: 'no valid serving certificate' }) },
    stop: () => serving.stop(),
  };
}

/** meshca.audit.v1.AuditService, when there is a ledger to query. */
export function auditFeature(ctx: CaContext): Feature {
  if (!ctx.fullLedger) return {};
  const audit = createAuditService({ ledger: ctx.fullLedger, refusals: ctx.refusals, auditors: ctx.config.auditors, authenticate: (call) => authenticateCall(call as never, ctx), clock: ctx.clock, log: ctx.log });
  return { services: [(server) => server.addService(audit.service, audit.handlers)] };
}

/** CA-direct SDS (--sds): proxies without an agent get a CA-made key over SDS. */
export function caDirectSdsFeature(ctx: CaContext, federatedBundles?: () => ReadonlyMap<string, readonly string[]>): Feature & { readonly refreshBundle?: () => void } {
  if (!ctx.config.sds) return {};
  const { state, log } = ctx;
  const sds = createCaDirectSds({
    issuer: ctx.issuer,
    authenticate: (_md, call) => authenticateCall(call as never, ctx),
    authorize: (caller) => authorizeCaller(caller, ctx.policy, log),
    bundlePem: () => state.bundlePem,
    ...(federatedBundles ? { federatedBundles, federatedInRootca: ctx.config.federation.inRootca } : {}),
    clock: ctx.clock,
    log,
    ttlMs: ctx.config.ttl.defaultTtlMs,
    metrics: createSdsMetrics(ctx.registry, ctx.clock),
  });
  // Push a rotated bundle at once rather than at the next periodic refresh.
  const unsubscribe = state.subscribe(() => sds.refreshBundle());
  // An identity denied at runtime loses its open streams now, not at its next renewal.
  const unsubscribeDeny = ctx.denyList.subscribe(() => void sds.closeDenied());
  log.warn('CA-direct SDS is on (--sds): the CA makes and holds private keys for proxies that use it; prefer meshca agent, which keeps keys in the pod');
  return {
    services: [(server) => void sds.register(server)],
    refreshBundle: () => sds.refreshBundle(),
    stop: () => {
      unsubscribe();
      unsubscribeDeny();
      sds.close();
    },
  };
}

/** The meshca-leader Lease (--leader-election): undefined when this replica does the singleton duties alone. */
export async function leadershipFeature(ctx: CaContext): Promise<Feature & { readonly leadership?: Leadership }> {
  const { config } = ctx;
  // In a cluster, worker 0 stands for the whole process tree (the others never rotate on schedule).
  if (!doesSingletonDuties(ctx)) return {};
  const leadership = await startLeadership(config.leaderElection, config.kubernetes.kubeconfigPath, {
    namespace: config.namespace, clock: ctx.clock, log: ctx.log, registry: ctx.registry, leaseDurationMs: config.leaderLeaseMs,
  });
  return leadership ? { leadership, stop: () => leadership.stop() } : {};
}

/** Following the key store (CA material and the runtime deny list), rotating intermediates when due (on the leader only), and the admin APIs (meshca.admin.v1). */
export function rotationFeature(ctx: CaContext, leadership?: Leadership): Feature & { readonly runtime: RotationRuntime } {
  const { config, clock, log } = ctx;
  const keyType = config.rotation.keyType;
  // One rotation context for the scheduler and the admin API; only the actor differs.
  const rotation: Omit<RotationContext, 'actor'> = {
    store: ctx.keyStore, clock, policy: rotationPolicy(config.ttl.maxTtlMs), ledger: ctx.recorder, organization: config.rotation.organization,
    rootTtlMs: config.rotation.rootTtlMs, caTtlMs: config.rotation.caTtlMs, trustDomain: ctx.trustDomain, custody: ctx.signer.custody,
    // Root steps through the admin API wait on the ledger's facts and on this CA's own maximum TTL.
    ...(ctx.fullLedger ? { facts: { ledger: ctx.fullLedger, self: { maxTtlMs: config.ttl.maxTtlMs } } } : {}),
  };
  const runtime = startRotationRuntime({
    ...rotation, state: ctx.state, startVersion: ctx.keysVersion, log, registry: ctx.registry, keyType,
    // Other cluster workers follow worker 0's rotations through the key store poll.
    autoRotateIntermediates: leadership ? () => leadership.isLeader : doesSingletonDuties(ctx),
    pollMs: config.rotation.keysPollMs, onPoll: () => void ctx.denyList.reload(), rootExpiryWarningMs: config.rotation.rootExpiryWarningMs, caExpiryWarningMs: config.rotation.caExpiryWarningMs,
  });
  const admin = createAdminService({
    admins: config.admins, authenticate: (call) => authenticateCall(call as never, ctx), rotation: (actor) => ({ ...rotation, actor }),
    defaultKeyType: keyType, afterChange: () => void runtime.reload(), ...(ctx.fullLedger ? { ledger: ctx.fullLedger } : {}), clock, log,
  });
  const deny = createDenyListService({
    admins: config.admins, authenticate: (call) => authenticateCall(call as never, ctx), log, clock,
    denyList: (actor) => ({ store: ctx.keyStore.denyList, ledger: ctx.recorder, clock, actor }),
    statics: { denyIds: config.policy.denyIds, denyNamespaces: config.policy.denyNamespaces },
    afterChange: () => void ctx.denyList.reload(),
  });
  // A new leader checks the schedule at once rather than at its next pass.
  const unsubscribe = leadership?.subscribe((leading) => {
    if (leading) void runtime.check();
  });
  return {
    runtime,
    services: [(server) => server.addService(admin.service, admin.handlers), (server) => server.addService(deny.service, deny.handlers)],
    readiness: { chain: () => runtime.readiness(), signer: () => ctx.signer.readiness() },
    stop: () => {
      unsubscribe?.();
      runtime.stop();
      ctx.signer.close();
    },
  };
}

/** /readyz's ledger check, given why the ledger cannot record now (undefined: it can). */
export function ledgerReadiness(failing: string | undefined): ReturnType<ReadinessCheck> {
  return failing ? { ok: false, reason: `the ledger cannot record (${failing}); issuance is refused until it can` } : { ok: true };
}

/** The ledger's health for /readyz, and retention (--retain; in a cluster, the primary prunes its ledger). */
export function ledgerFeature(ctx: CaContext): Feature {
  const { recorder } = ctx;
  const retention = ctx.fullLedger && !ctx.worker ? startRetention(ctx.fullLedger, ctx.config.retainMs, ctx.clock, ctx.log) : undefined;
  return {
    readiness: {
      ledger: () => ledgerReadiness(recorder.health() ?? recorder.failing),
    },
    stop: async () => {
      retention?.stop();
      // The counts of the interval so far go in before the ledger closes.
      await ctx.refusals.stop();
    },
  };
}

/** The trust bundle for everyone who must trust it: /bundle, and the ConfigMaps (--distribute-bundle). */
export async function bundleFeature(ctx: CaContext, rotation: Pick<RotationRuntime, 'version'>): Promise<Feature> {
  const { config, state } = ctx;
  const distributor = await startBundleDistribution(doesSingletonDuties(ctx) ? config.rotation.distributeBundle : 'off', config.kubernetes.kubeconfigPath, {
    namespace: config.namespace, bundlePem: () => state.bundlePem.join(''), onBundleChange: (l) => state.subscribe(() => l()), clock: ctx.clock, log: ctx.log, registry: ctx.registry,
  });
  return {
    routes: { '/bundle': createBundleRoute(() => ({ rootsPem: state.bundlePem, sequence: rotation.version })) },
    stop: () => distributor?.stop(),
  };
}

/**
 * SPIFFE federation: the bundle endpoint over TLS (--bundle-endpoint, with this CA's own X509-SVID)
 * and the bundles of the trust domains in --federate-with, refreshed by their hints.
 */
export async function federationFeature(ctx: CaContext, rotation: Pick<RotationRuntime, 'version'>): Promise<Feature & { readonly federation?: Federation; readonly endpointAddress?: string }> {
  const { config, clock, log, state } = ctx;
  const f = config.federation;
  let federation: Federation | undefined;
  if (f.peers.length > 0) {
    const bootstrap = new Map(f.bootstrap.map((text) => {
      const b = readBootstrapBundle(text, clock.now());
      return [b.trustDomain, b] as const;
    }));
    federation = new Federation({ peers: f.peers, store: new FederatedBundleStore(config.keysDir), bootstrap, clock, log });
    // A peer that is down must not hold up this CA: the first fetch runs in the background.
    void federation.start();
  }
  let endpoint: BundleEndpoint | undefined;
  if (f.endpoint) {
    const endpointId = kubernetesSpiffeId(ctx.trustDomain, config.namespace, 'meshca');
    endpoint = await startBundleEndpoint({
      address: f.endpoint,
      clock,
      log,
      limits: config.connections,
      onRefused: connectionRefusalReporter({ port: '--bundle-endpoint', log, clock, count: (reason) => ctx.metrics.connectionsRefused.inc({ reason }) }),
      route: createBundleRoute(() => ({ rootsPem: state.bundlePem, sequence: rotation.version })),
      issue: async () => {
        const { privateKey } = generateKeyPair('ec-p256');
        const svid = await ctx.issuer.issueWorkloadSvid({ caller: { spiffeId: endpointId, authenticator: 'self' }, csrPem: createCsrPem(privateKey), requestedTtlSeconds: 0, channel: 'serving-cert' });
        return { certChainPem: svid.certificateChainPem.join(''), keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, notBeforeMs: svid.certificate.notBeforeMs, notAfterMs: svid.certificate.notAfterMs };
      },
    });
  }
  return {
    ...(federation ? { federation } : {}),
    ...(endpoint ? { endpointAddress: endpoint.address } : {}),
    stop: async () => {
      federation?.stop();
      await endpoint?.stop();
    },
  };
}
