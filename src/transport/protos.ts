// The .proto files every endpoint speaks, loaded once per process on first use: meshca's own
// (protos/: Istio's CA service, the admin and audit APIs) and Envoy's SDS, from a small descriptor
// (protos/envoy/sds.json) pruned from the Envoy API tree @grpc/grpc-js-xds ships by
// src/transport/envoy_descriptor.ts: loading the tree itself cost every agent ~27 MB of RSS.
// Loading only: no handlers, no encoders.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const ISTIO_CA_SERVICE = 'istio.v1.auth.IstioCertificateService';
export const ADMIN_SERVICE = 'meshca.admin.v1.RotationService';
export const DENY_LIST_SERVICE = 'meshca.admin.v1.DenyListService';
export const AUDIT_SERVICE = 'meshca.audit.v1.AuditService';
export const SDS_SERVICE = 'envoy.service.secret.v3.SecretDiscoveryService';

type ProtoFamily = 'meshca' | 'envoy';

const FAMILY_OPTIONS: Readonly<Record<ProtoFamily, protoLoader.Options>> = {
  // Field names as written in the .proto (Istio's validity_duration), 64-bit numbers as numbers.
  meshca: { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true },
  // Field names stay snake_case, as in Envoy's protos and documentation.
  envoy: { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true },
};

/** Envoy's SDS service and the messages it reaches, as protobufjs JSON (`npm run protos` rebuilds it). */
export const ENVOY_SDS_DESCRIPTOR = new URL('../../protos/envoy/sds.json', import.meta.url);

const PROTO_FILES = {
  [ISTIO_CA_SERVICE]: { family: 'meshca', files: ['istio/v1/auth/ca.proto'] },
  [ADMIN_SERVICE]: { family: 'meshca', files: ['meshca/admin/v1/admin.proto'] },
  [DENY_LIST_SERVICE]: { family: 'meshca', files: ['meshca/admin/v1/admin.proto'] },
  [AUDIT_SERVICE]: { family: 'meshca', files: ['meshca/audit/v1/audit.proto'] },
  [SDS_SERVICE]: { family: 'envoy', files: [] },
} as const satisfies Record<string, { family: ProtoFamily; files: readonly string[] }>;

export type ServiceName = keyof typeof PROTO_FILES;

const MESHCA_PROTOS_DIR = fileURLToPath(new URL('../../protos/', import.meta.url));

const definitions = new Map<ServiceName, protoLoader.PackageDefinition>();
const clients = new Map<ServiceName, grpc.ServiceClientConstructor>();

/** The package definition holding `service` and the messages it uses (e.g. Envoy's Secret). */
export function protoDefinition(service: ServiceName): protoLoader.PackageDefinition {
  let definition = definitions.get(service);
  if (!definition) {
    const { family, files } = PROTO_FILES[service];
    definition =
      family === 'envoy'
        ? protoLoader.fromJSON(JSON.parse(readFileSync(ENVOY_SDS_DESCRIPTOR, 'utf8')) as Record<string, unknown>, FAMILY_OPTIONS[family])
        : protoLoader.loadSync([...files], { ...FAMILY_OPTIONS[family], includeDirs: [MESHCA_PROTOS_DIR] });
    definitions.set(service, definition);
  }
  return definition;
}

/** What a grpc-js server adds with `addService`. */
export function serviceDefinition(service: ServiceName): grpc.ServiceDefinition {
  return protoDefinition(service)[service] as grpc.ServiceDefinition;
}

/** A client constructor for `service` (the agent, tools, tests). */
export function serviceClient(service: ServiceName): grpc.ServiceClientConstructor {
  let client = clients.get(service);
  if (!client) {
    client = grpc.makeGenericClientConstructor(serviceDefinition(service), service.slice(service.lastIndexOf('.') + 1));
    clients.set(service, client);
  }
  return client;
}
