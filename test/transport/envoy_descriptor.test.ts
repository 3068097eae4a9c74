// The pruned Envoy SDS descriptor (protos/envoy/sds.json) must be current with the Envoy API tree
// @grpc/grpc-js-xds ships, and must encode and decode SDS messages byte for byte as the tree does.

import { readFileSync } from 'node:fs';
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { buildEnvoySdsDescriptor, envoyIncludeDirs, SDS_PROTO_FILES } from '../../src/transport/envoy_descriptor.ts';
import { ENVOY_SDS_DESCRIPTOR } from '../../src/transport/protos.ts';
import { protoDefinition, SDS_SERVICE } from '../../src/transport/index.ts';

const OPTIONS = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true };
const SECRET = 'envoy.extensions.transport_sockets.tls.v3.Secret';

type Message = protoLoader.MessageTypeDefinition<object, Record<string, unknown>>;

describe('Envoy SDS descriptor', () => {
  it('is what `npm run protos` builds from the installed Envoy protos (rebuild it after upgrading @grpc/grpc-js-xds)', () => {
    expect(JSON.parse(readFileSync(ENVOY_SDS_DESCRIPTOR, 'utf8'))).toEqual(buildEnvoySdsDescriptor());
  });

  it('encodes secrets and discovery responses and decodes requests exactly as the full Envoy tree does', () => {
    const full = protoLoader.loadSync([...SDS_PROTO_FILES], { ...OPTIONS, includeDirs: envoyIncludeDirs() });
    const small = protoDefinition(SDS_SERVICE);
    const secret = {
      name: 'default',
      tls_certificate: { certificate_chain: { inline_bytes: Buffer.from('chain') }, private_key: { inline_bytes: Buffer.from('key') } },
    };
    const bundle = { name: 'ROOTCA', validation_context: { trusted_ca: { inline_bytes: Buffer.from('roots') }, match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: 'spiffe://' } }] } };
    for (const value of [secret, bundle]) {
      expect((small[SECRET] as Message).serialize(value)).toEqual((full[SECRET] as Message).serialize(value));
    }
    const fullService = full[SDS_SERVICE] as protoLoader.ServiceDefinition;
    const smallService = small[SDS_SERVICE] as protoLoader.ServiceDefinition;
    expect(Object.keys(smallService).sort()).toEqual(Object.keys(fullService).sort());
    const any = { type_url: 'type.googleapis.com/' + SECRET, value: (full[SECRET] as Message).serialize(secret) };
    const response = { version_info: '3', nonce: '7', type_url: any.type_url, resources: [any], control_plane: { identifier: 'meshca' } };
    expect(smallService.StreamSecrets!.responseSerialize(response)).toEqual(fullService.StreamSecrets!.responseSerialize(response));
    const delta = { system_version_info: '3', nonce: '8', type_url: any.type_url, resources: [{ name: 'default', version: '3', resource: any, ttl: { seconds: '60' } }], removed_resources: ['x'] };
    expect(smallService.DeltaSecrets!.responseSerialize(delta)).toEqual(fullService.DeltaSecrets!.responseSerialize(delta));
    const request = fullService.StreamSecrets!.requestSerialize({
      version_info: '2',
      node: { id: 'sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local', cluster: 'c', metadata: { fields: { A: { string_value: 'b' } } }, user_agent_name: 'envoy' },
      resource_names: ['default', 'ROOTCA'],
      type_url: any.type_url,
      response_nonce: '7',
      error_detail: { code: 3, message: 'bad' },
    });
    expect(smallService.StreamSecrets!.requestDeserialize(request)).toEqual(fullService.StreamSecrets!.requestDeserialize(request));
  });
});
