// Public face of src/server: `meshca serve`'s assembly, configuration and the pieces other
// features plug into (authenticating a gRPC call, the CA state, the HTTP routes).
export { startCaServer, MAX_REQUEST_BYTES, type RunningCaServer, type ServeDeps } from './serve.ts';
export type { ServerContext } from './context.ts';
export { serveConfigFrom, SERVE_OPTIONS, type ServeConfig, type ServeSettings } from './config.ts';
export { authenticateCall, authorizeCaller, type AdmissionDeps, type OnRefused } from './ca_service.ts';
export { CaState } from './ca_state.ts';
export { authRequestOf } from './call_identity.ts';
export { servingDnsNames, servingIpAddresses, SERVING_IP_ADDRESSES } from './serving_identity.ts';
export { createCaDirectSds, BUNDLE_REFRESH_MS, type CaDirectSds, type CaDirectSdsDeps } from './ca_direct_sds.ts';
export { startClusterPrimary, type RunningCluster } from './cluster_primary.ts';
export { runClusterWorker, processChannel } from './cluster_worker.ts';
export { WORKER_RANK_ENV } from './cluster_protocol.ts';
