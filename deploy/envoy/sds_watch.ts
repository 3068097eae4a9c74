// A tiny SDS client for trying meshca without Envoy: subscribes to default and ROOTCA on the agent's
// socket like Envoy does, ACKs, and prints one line per push. Never prints the private key.
//   node deploy/envoy/sds_watch.ts [/path/to/socket]

import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { SECRET_TYPE_URL } from '../../src/sds/index.ts';
import { protoDefinition, SDS_SERVICE, serviceClient } from '../../src/transport/index.ts';

const socket = process.argv[2] ?? '/var/run/secrets/workload-spiffe-uds/socket';
const Client = serviceClient(SDS_SERVICE);
const secretType = protoDefinition(SDS_SERVICE)['envoy.extensions.transport_sockets.tls.v3.Secret'] as protoLoader.MessageTypeDefinition<object, SecretMessage>;

interface SecretMessage {
  name: string;
  tls_certificate?: { certificate_chain?: { inline_bytes?: Buffer } };
  validation_context?: { trusted_ca?: { inline_bytes?: Buffer } };
}

const client = new Client(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { StreamSecrets(): grpc.ClientDuplexStream<object, { version_info: string; nonce: string; resources: { value: Buffer }[] }> };
const request = (extra: object) => ({ node: { id: 'sds-watch' }, resource_names: ['default', 'ROOTCA'], type_url: SECRET_TYPE_URL, ...extra });

function watch(): void {
  const call = client.StreamSecrets();
  call.on('data', (res) => {
    for (const any of res.resources) {
      const s = secretType.deserialize(any.value);
      const when = new Date().toISOString();
      if (s.tls_certificate) {
        const leaf = new X509Certificate(s.tls_certificate.certificate_chain!.inline_bytes!);
        process.stdout.write(`${when} default  ${leaf.subjectAltName}  serial ${leaf.serialNumber}  valid until ${new Date(leaf.validTo).toISOString()}\n`);
      } else if (s.validation_context) {
        const roots = s.validation_context.trusted_ca!.inline_bytes!.toString().split('BEGIN CERTIFICATE').length - 1;
        process.stdout.write(`${when} ROOTCA   ${roots} root(s)\n`);
      }
    }
    call.write(request({ version_info: res.version_info, response_nonce: res.nonce }));
  });
  call.on('error', (err: grpc.ServiceError) => {
    // Like Envoy: the agent may not be up yet, or may restart; try again.
    if (err.code === grpc.status.UNAVAILABLE) {
      process.stderr.write(`sds-watch: ${socket} not reachable yet; retrying\n`);
      setTimeout(watch, 1000);
      return;
    }
    process.stderr.write(`sds-watch: ${err.details || err.message}\n`);
    process.exit(1);
  });
  call.write(request({}));
}

watch();
process.stdout.write(`watching SDS on ${socket} (Ctrl-C to stop)\n`);
