// Loads meshca's own .proto files (protos/) once. Services defined by others (Envoy's SDS) are
// loaded where they are served.

import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTOS_DIR = fileURLToPath(new URL('../../protos/', import.meta.url));

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTOS_DIR],
};

let caService: grpc.ServiceDefinition | undefined;

/** istio.v1.auth.IstioCertificateService */
export function istioCertificateService(): grpc.ServiceDefinition {
  if (!caService) {
    const def = protoLoader.loadSync('istio/v1/auth/ca.proto', PROTO_LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
    };
    caService = pkg.istio.v1.auth.IstioCertificateService.service;
  }
  return caService;
}

export function istioCertificateClient(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync('istio/v1/auth/ca.proto', PROTO_LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
  };
  return pkg.istio.v1.auth.IstioCertificateService;
}
