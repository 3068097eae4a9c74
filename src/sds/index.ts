// Public face of src/sds: Envoy's Secret Discovery Service over grpc-js (streams, versions, nonces)
// and the secret store that feeds it. Knows no CA and no authentication: CA-direct SDS, which
// composes this protocol with the CA, lives in src/server.
export {
  SECRET_TYPE_URL,
  DEFAULT_SECRET_NAME,
  ROOTCA_SECRET_NAME,
  SecretStore,
  tlsCertificateSecret,
  trustedCaSecret,
  type SdsSecret,
  type SecretChange,
  type SecretSource,
} from './secrets.ts';
export { addSdsService, type SdsService, type SdsServiceOptions, type OpenSource, type OpenedSource } from './service.ts';
export { createSdsMetrics, type SdsMetrics, type SdsCounters } from './metrics.ts';
export { loadSdsProtos } from './protos.ts';
