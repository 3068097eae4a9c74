// Registers Envoy's SecretDiscoveryService on a grpc-js server: parses, finds the caller's secret
// source, runs the stream, maps errors once. Knows no CA and no keys of its own.

import * as grpc from '@grpc/grpc-js';
import { toGrpcStatus } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import { DeltaStream } from './delta_stream.ts';
import { createSdsMetrics, type SdsMetrics, type SdsStreamKind } from './metrics.ts';
import { loadSdsProtos } from './protos.ts';
import { checkTypeUrl, WILDCARD, type DeltaDiscoveryRequest, type DiscoveryRequest } from './requests.ts';
import type { SdsSecret, SecretSource } from './secrets.ts';
import { SotwStream } from './sotw_stream.ts';
import { subscriptionIndexFor } from './subscriptions.ts';

/** The secrets one call may see, and what to do when the call ends (e.g. stop its renewals). */
export interface OpenedSource {
  readonly source: SecretSource;
  close(): void;
  /** Settles when the caller may no longer be served (e.g. its token expired); the stream ends with that error. */
  readonly revoked?: Promise<unknown>;
}

/** Called once per stream or fetch: authenticate if needed and return the caller's secrets. */
export type OpenSource = (call: { readonly metadata: grpc.Metadata; getPeer(): string }) => Promise<OpenedSource>;

export interface SdsServiceOptions {
  /** One source for every caller (the agent), or one per caller (the CA-direct mode). */
  readonly source: SecretSource | OpenSource;
  readonly log: Logger;
  readonly metrics?: SdsMetrics;
}

export interface SdsService {
  readonly metrics: SdsMetrics;
}

function opener(source: SecretSource | OpenSource): OpenSource {
  if (typeof source === 'function') return source;
  const opened: OpenedSource = { source, close() {} };
  return async () => opened;
}

function statusOf(err: unknown, log: Logger): Partial<grpc.StatusObject> {
  const { code, details } = toGrpcStatus(err, log);
  return { code: code as number as grpc.status, details };
}

type Stream = SotwStream | DeltaStream;

function runStream<Req>(
  kind: SdsStreamKind,
  call: grpc.ServerDuplexStream<Req, Buffer>,
  open: OpenSource,
  metrics: SdsMetrics,
  log: Logger,
  make: (source: SecretSource) => Stream & { onRequest(req: Req): void },
): void {
  metrics.streamOpened(kind);
  let stream: (Stream & { onRequest(req: Req): void }) | undefined;
  let opened: OpenedSource | undefined;
  let finished = false;
  // Requests that arrive while the source is being opened (authentication) wait their turn.
  const early: Req[] = [];
  const finish = () => {
    if (finished) return;
    finished = true;
    stream?.close();
    opened?.close();
    metrics.streamClosed(kind);
  };
  const fail = (err: unknown) => {
    if (finished) return;
    const status = statusOf(err, log);
    log.info({ code: status.code, reason: status.details }, 'SDS stream ended with an error');
    finish();
    call.emit('error', status);
  };
  const handle = (req: Req) => {
    try {
      stream!.onRequest(req);
    } catch (err) {
      fail(err);
    }
  };
  call.on('data', (req: Req) => {
    if (finished) return;
    if (stream) handle(req);
    else early.push(req);
  });
  call.on('end', () => {
    finish();
    call.end();
  });
  call.on('cancelled', finish);
  call.on('close', finish);
  call.on('error', finish);
  open(call).then(
    (source) => {
      if (finished) {
        source.close();
        return;
      }
      opened = source;
      source.revoked?.then(fail, fail);
      stream = make(source.source);
      for (const req of early.splice(0)) handle(req);
    },
    fail,
  );
}

function fetchSecrets(call: grpc.ServerUnaryCall<DiscoveryRequest, Buffer>, callback: grpc.sendUnaryData<Buffer>, open: OpenSource, metrics: SdsMetrics, log: Logger): void {
  const req = call.request;
  try {
    checkTypeUrl(req.type_url);
  } catch (err) {
    callback(statusOf(err, log));
    return;
  }
  const requested = (req.resource_names ?? []).filter((n) => n !== WILDCARD);
  let done = false;
  let stopWatching = () => {};
  let opened: OpenedSource | undefined;
  const end = () => {
    done = true;
    stopWatching();
    opened?.close();
  };
  call.on('cancelled', end);
  open(call).then((source) => {
    if (done) {
      source.close();
      return;
    }
    opened = source;
    const index = subscriptionIndexFor(source.source);
    // Like xDS REST: answer once every requested secret exists and differs from the version the
    // proxy says it has; until then the call waits (up to the caller's deadline).
    const attempt = () => {
      if (done) return;
      const names = requested.length > 0 ? requested : [...source.source.names()];
      const secrets = [...new Set(names)].sort().map((n) => source.source.get(n));
      if (secrets.length === 0 || secrets.some((s) => s === undefined)) return;
      const response = index.encoder.sotw(secrets as SdsSecret[]);
      if (!response || response.version === req.version_info) return;
      end();
      metrics.fetched();
      callback(null, response.bytes);
    };
    stopWatching = source.source.subscribe(attempt);
    attempt();
  }, (err) => {
    if (done) return;
    end();
    callback(statusOf(err, log));
  });
}

/** Adds envoy.service.secret.v3.SecretDiscoveryService (Stream, Delta, Fetch) to `server`. */
export function addSdsService(server: grpc.Server, options: SdsServiceOptions): SdsService {
  const open = opener(options.source);
  const metrics = options.metrics ?? createSdsMetrics();
  const log = options.log;
  const handlers: grpc.UntypedServiceImplementation = {
    StreamSecrets: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) =>
      runStream('sotw', call, open, metrics, log, (source) => new SotwStream(call, source, subscriptionIndexFor(source), metrics, log)),
    DeltaSecrets: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) =>
      runStream('delta', call, open, metrics, log, (source) => new DeltaStream(call, source, subscriptionIndexFor(source), metrics, log)),
    FetchSecrets: (call: grpc.ServerUnaryCall<DiscoveryRequest, Buffer>, callback: grpc.sendUnaryData<Buffer>) => fetchSecrets(call, callback, open, metrics, log),
  };
  server.addService(loadSdsProtos().service, handlers);
  return { metrics };
}
