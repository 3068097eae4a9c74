// Envoy's SDS protos, loaded from the copy @grpc/grpc-js-xds ships (never copied into this repo),
// and the encoders built from them. Loaded once per process, on first use.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const SDS_SERVICE = 'envoy.service.secret.v3.SecretDiscoveryService';
const SECRET_MESSAGE = 'envoy.extensions.transport_sockets.tls.v3.Secret';
/** Include directories inside @grpc/grpc-js-xds/deps that Envoy's imports resolve against. */
const PROTO_DEPS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'];

export interface SdsProtos {
  /** grpc-js service definition; responses may also be pre-encoded Buffers (written as they are). */
  readonly service: grpc.ServiceDefinition;
  encodeSecret(secret: object): Buffer;
  encodeResponse(response: object): Buffer;
  encodeDeltaResponse(response: object): Buffer;
  decodeResponse(bytes: Buffer): unknown;
  decodeDeltaResponse(bytes: Buffer): unknown;
  decodeSecret(bytes: Buffer): unknown;
}

let loaded: SdsProtos | undefined;

function protoIncludeDirs(): string[] {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  return PROTO_DEPS.map((dir) => join(root, 'deps', dir));
}

/** Field names stay snake_case, as in Envoy's protos and documentation. */
export const PROTO_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true };

export function loadSdsProtos(): SdsProtos {
  if (loaded) return loaded;
  const definition = protoLoader.loadSync(['envoy/service/secret/v3/sds.proto', 'envoy/extensions/transport_sockets/tls/v3/secret.proto'], {
    ...PROTO_OPTIONS,
    includeDirs: protoIncludeDirs(),
  });
  const service = definition[SDS_SERVICE] as grpc.ServiceDefinition;
  const secret = definition[SECRET_MESSAGE] as protoLoader.MessageTypeDefinition<object, unknown>;
  const stream = service.StreamSecrets!;
  const delta = service.DeltaSecrets!;
  // Responses shared between thousands of streams are encoded once; a Buffer passes through.
  const passBuffers = (encode: (value: object) => Buffer) => (value: object | Buffer) => (Buffer.isBuffer(value) ? value : encode(value));
  const patched: grpc.ServiceDefinition = Object.fromEntries(
    Object.entries(service).map(([name, method]) => [name, { ...method, responseSerialize: passBuffers(method.responseSerialize as (value: object) => Buffer) }]),
  );
  loaded = Object.freeze({
    service: patched,
    encodeSecret: (value: object) => secret.serialize(value),
    encodeResponse: stream.responseSerialize as (value: object) => Buffer,
    encodeDeltaResponse: delta.responseSerialize as (value: object) => Buffer,
    decodeResponse: stream.responseDeserialize,
    decodeDeltaResponse: delta.responseDeserialize,
    decodeSecret: (bytes: Buffer) => secret.deserialize(bytes),
  });
  return loaded;
}

/** The include directories, for clients (tests, benchmarks) that load the same protos. */
export function sdsProtoIncludeDirs(): string[] {
  return protoIncludeDirs();
}
