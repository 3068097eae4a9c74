// Public face of src/transport: what every gRPC and HTTP endpoint shares (the CA's and the agent's
// alike): the proto loader, a call's peer address, the HTTP side port, listening. Knows no CA, no
// ledger, no authentication; loading it must stay cheap for the agent that runs in every pod.
export { protoDefinition, serviceDefinition, serviceClient, ISTIO_CA_SERVICE, ADMIN_SERVICE, DENY_LIST_SERVICE, AUDIT_SERVICE, SDS_SERVICE, type ServiceName } from './protos.ts';
export { peerAddressOf } from './peer.ts';
export { createHttpServer, failingChecks, type FailingCheck, type HttpServerOptions, type ReadinessCheck, type Route } from './http_server.ts';
export { listenHttp, closeHttp, shutdownGrpc } from './listen.ts';
export {
  parseListenAddress,
  listenUrl,
  type ListenAddress,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_PEER,
  DEFAULT_MAX_STREAMS_PER_CONNECTION,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
} from './settings/index.ts';
export { listenGated, listenGrpcGated, type ConnectionLimits, type GatedListener, type RefusalReason } from './connection_limits.ts';
export { createTlsClient, hostOf, tlsFailureOf, type TlsClientOptions } from './tls_client.ts';
