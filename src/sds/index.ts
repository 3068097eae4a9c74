// Public face of src/sds: Envoy's Secret Discovery Service over grpc-js, the secret store that
// feeds it, and the CA-direct mode. Knows no CA internals beyond src/ca's public face.
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
export { loadSdsProtos, sdsProtoIncludeDirs, PROTO_OPTIONS } from './protos.ts';
export { createCaDirectSds, BUNDLE_REFRESH_MS, type CaDirectSds, type CaDirectSdsDeps } from './ca_direct.ts';
