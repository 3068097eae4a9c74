// Assembles `meshca serve`: build the context (verified CA, ledger, authenticators) → start the
// features → listen on gRPC over TLS and on the HTTP side port → close in reverse. Fails closed:
// whatever started is stopped again when a later step fails.

import { randomBytes } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_LEAF_TTL_MS } from '../ca/index.ts';
import { closeHttp, createHttpServer, failingChecks, listenGrpcGated, listenHttp, shutdownGrpc, type FailingCheck, type GatedListener, type ReadinessCheck } from '../transport/index.ts';
import type { ServeConfig } from './config.ts';
import type { Federation } from '../federation/index.ts';
import type { CaEvent } from '../ledger/index.ts';
import { injectorFeature } from './injector.ts';
import { openServerContext, type CaContext, type ContextDeps, type ServerContext } from './context.ts';
import { federationFeature, auditFeature, bundleFeature, caDirectSdsFeature, createCertificateFeature, leadershipFeature, ledgerFeature, rotationFeature, servingIdentityFeature, type Feature } from './features.ts';
import { nodeAuthorizationFeature } from './node_authorization.ts';
import { connectionRefusalReporter } from './connection_refusals.ts';

/** gRPC requests bigger than this are refused before parsing (RESOURCE_EXHAUSTED). */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** The biggest answer any service sends (a chain and bundle, an audit record, a status). */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
/** Per HTTP/2 session, in MB (Node's unit): headers, queued output and unacknowledged frames. */
const MAX_SESSION_MEMORY_MB = 10;

export interface ServeDeps extends ContextDeps {
  /** Adds further gRPC services to the CA's server (tests). */
  readonly registerServices?: (server: grpc.Server, ctx: ServerContext) => void;
  /** Aborted on SIGINT/SIGTERM: a start in progress stops at the next step and gives back what it started. */
  readonly signal?: AbortSignal;
}

export interface RunningCaServer {
  readonly grpcAddress: string;
  /** The HTTP side port; empty in a cluster worker (the primary serves it). */
  readonly httpAddress: string;
  /** The injection webhook's host:port, with --injector. */
  readonly injectorAddress?: string;
  readonly context: ServerContext;
  /** The readiness checks failing now (what /readyz reports). */
  failing(): FailingCheck[];
  /** The trust bundle being served at /bundle, and its sequence. */
  bundle(): { readonly rootsPem: readonly string[]; readonly sequence: number };
  /** Stops accepting, lets calls in flight finish for up to `graceMs`, then closes everything. */
  close(graceMs?: number): Promise<void>;
}

export async function startCaServer(config: ServeConfig, deps: ServeDeps): Promise<RunningCaServer> {
  const { clock, log, signal } = deps;
  signal?.throwIfAborted();
  const ctx = await openServerContext(config, deps);
  const features: Feature[] = [];
  const start = async <F extends Feature>(starting: F | Promise<F>): Promise<F> => {
    const feature = await starting;
    features.push(feature);
    signal?.throwIfAborted();
    return feature;
  };
  // Every service on the port shares these bounds: message sizes both ways, streams per connection, session memory.
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_REQUEST_BYTES,
    'grpc.max_send_message_length': MAX_RESPONSE_BYTES,
    'grpc.max_concurrent_streams': config.connections.maxStreamsPerConnection,
    'grpc-node.max_session_memory': MAX_SESSION_MEMORY_MB,
    'grpc.keepalive_permit_without_calls': 1,
  });
  let listener: GatedListener | undefined;
  let http: HttpServer | undefined;
  let started = false;
  const instance = randomBytes(8).toString('hex');
  // Everything after the gRPC port: the HTTP port, the features newest first, the ledger last.
  const closeRest = async () => {
    if (http) await closeHttp(http);
    for (const feature of [...features].reverse()) await feature.stop?.();
    if (started && !ctx.worker) await ctx.recorder.append(serverStopEvent(clock.now(), instance)).catch(() => undefined);
    await ctx.recorder.close();
    await ctx.closeKeyStore();
  };

  try {
    const nodeAuthorization = await start(nodeAuthorizationFeature(ctx));
    // Federated roots join the bundle in cert_chain only with --federated-in-rootca; the federation starts after rotation.
    let federation: Federation | undefined;
    const federatedRoots = config.federation.inRootca ? () => federation?.roots() ?? [] : undefined;
    await start(createCertificateFeature(ctx, nodeAuthorization.authorizer, federatedRoots));
    const serving = await start(servingIdentityFeature(ctx));
    await start(auditFeature(ctx));
    const caDirectSds = await start(caDirectSdsFeature(ctx, () => federation?.bundles() ?? new Map()));
    const leader = await start(leadershipFeature(ctx));
    const rotation = await start(rotationFeature(ctx, leader.leadership));
    await start(ledgerFeature(ctx));
    await start(bundleFeature(ctx, rotation.runtime));
    const federating = await start(federationFeature(ctx, rotation.runtime));
    federation = federating.federation;
    // A peer's new bundle reaches CA-direct SDS streams at once (federated/<td>, and ROOTCA with --federated-in-rootca).
    if (federation && caDirectSds.refreshBundle) {
      federation.subscribe(caDirectSds.refreshBundle);
      caDirectSds.refreshBundle();
    }
    const injector = await start(injectorFeature(ctx, serving.identity, leader.leadership));
    await start(hooksFeature(ctx, deps));

    for (const add of features.flatMap((f) => f.services ?? [])) add(server);
    listener = await listenGrpcGated(server, config.listen, '--listen', serving.credentials, config.connections,
      connectionRefusalReporter({ port: '--listen', log, clock, count: (reason) => ctx.metrics.connectionsRefused.inc({ reason }) }));
    const grpcAddress = listener.address;
    const readiness: Record<string, ReadinessCheck> = Object.assign({}, ...features.map((f) => f.readiness));
    let httpAddress = '';
    // A cluster's primary serves the side port and records the server's start and stop for all workers.
    if (!ctx.worker) {
      http = createHttpServer({
        registry: ctx.registry,
        readiness,
        routes: Object.assign({}, ...features.map((f) => f.routes)),
        // /readyz is unauthenticated: it names the failing checks; why they fail goes to the log only.
        onNotReady: (failing) => log.warn({ failing }, `not ready: ${failing.map((f) => f.check).join(', ')}`),
      });
      httpAddress = await listenHttp(http, config.httpListen, '--http-listen');
      signal?.throwIfAborted();
      await ctx.recorder.append(serverStartEvent(clock.now(), config, { issuerKeyId: ctx.state.authority.keyId, rootKeyId: ctx.state.authority.rootKeyId }, { grpc: grpcAddress, http: httpAddress, instance }));
    }
    started = true;
    logListening(ctx, grpcAddress, httpAddress);

    let closing: Promise<void> | undefined;
    return {
      grpcAddress,
      httpAddress,
      ...(injector.address ? { injectorAddress: injector.address } : {}),
      context: ctx,
      failing: () => failingChecks(readiness),
      bundle: () => ({ rootsPem: ctx.state.bundlePem, sequence: rotation.runtime.version }),
      close(graceMs = config.shutdownGraceMs) {
        closing ??= (async () => {
          log.info({ graceMs }, 'shutting down: no new requests; finishing those in flight');
          listener?.stopAccepting();
          const [callsDone] = await Promise.all([shutdownGrpc(server, graceMs), listener?.drain(graceMs)]);
          if (!callsDone) log.warn('requests still in flight after the grace period; closing them');
          await closeRest();
          log.info('stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    if (signal?.aborted) log.info('asked to stop while starting; stopping what was started');
    server.forceShutdown();
    listener?.stopAccepting();
    listener?.destroyAll();
    await closeRest().catch((closeErr) => log.error({ err: closeErr }, 'could not close everything after a failed start'));
    throw err;
  }
}

/** The extension points of ServeDeps, as one more feature. */
function hooksFeature(ctx: ServerContext, deps: ServeDeps): Feature {
  const { registerServices } = deps;
  return registerServices ? { services: [(server) => registerServices(server, ctx)] } : {};
}

/** The server-start record (a cluster's primary adds how many workers it runs). */
export function serverStartEvent(
  timeMs: number,
  config: ServeConfig,
  keys: { readonly issuerKeyId: string; readonly rootKeyId: string },
  where: { readonly grpc: string; readonly http: string; readonly instance: string; readonly workers?: number },
): CaEvent {
  const detail = {
    grpc: where.grpc, http: where.http, issuerKeyId: keys.issuerKeyId, rootKeyId: keys.rootKeyId,
    // Root rotation waits out the longest TTL any running CA grants: this one's until its server-stop.
    instance: where.instance, maxTtlSeconds: Math.ceil(config.ttl.maxTtlMs / 1000),
    ...(where.workers !== undefined ? { workers: where.workers } : {}),
  };
  return { type: 'ca', timeMs, event: 'server-start', actor: 'meshca serve', detail };
}

/** The server-stop record: root rotation counts a CA's maximum TTL (from server-start) until it. */
export function serverStopEvent(timeMs: number, instance: string): CaEvent {
  return { type: 'ca', timeMs, event: 'server-stop', actor: 'meshca serve', detail: { instance } };
}

function logListening(ctx: CaContext, grpcAddress: string, httpAddress: string): void {
  const { config, state } = ctx;
  ctx.log.info(
    {
      grpc: grpcAddress,
      ...(httpAddress ? { http: httpAddress } : {}),
      trustDomain: ctx.trustDomain,
      issuerKeyId: state.authority.keyId,
      rootKeyId: state.authority.rootKeyId,
      defaultTtlSeconds: (config.ttl.defaultTtlMs ?? DEFAULT_LEAF_TTL_MS) / 1000,
    },
    // A cluster's primary logs "meshca serve listening" once every worker is.
    ctx.worker ? 'meshca serve worker listening' : 'meshca serve listening',
  );
}
