// Envoy's SDS service and Secret message (loaded once by src/transport) and the encoders built
// from them. Built once per process, on first use.

import type * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { protoDefinition, SDS_SERVICE } from '../transport/index.ts';

const SECRET_MESSAGE = 'envoy.extensions.transport_sockets.tls.v3.Secret';

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

export function loadSdsProtos(): SdsProtos {
  if (loaded) return loaded;
  const definition = protoDefinition(SDS_SERVICE);
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
