// Child process for bench/sds.ts: holds many Envoy-like StreamSecrets streams on one SDS socket,
// ACKs every response, and tells the parent when every stream holds a given version.

import { SECRET_TYPE_URL } from '../src/sds/index.ts';
import { sdsClient } from '../test/sds/envoy_client.ts';

const [socket, connectionsText, streamsText] = process.argv.slice(2);
const connections = Number(connectionsText);
const streamsPerConnection = Number(streamsText);
const total = connections * streamsPerConnection;

/** version → how many streams hold it. */
const holding = new Map<string, number>();

function observe(version: string): void {
  const n = (holding.get(version) ?? 0) + 1;
  holding.set(version, n);
  if (n === total) process.send!({ type: 'all', version });
}

const node = { id: 'bench', cluster: 'bench' };
for (let c = 0; c < connections; c++) {
  const client = sdsClient(`unix:${socket}`);
  for (let s = 0; s < streamsPerConnection; s++) {
    const call = client.StreamSecrets!() as import('@grpc/grpc-js').ClientDuplexStream<object, { version_info: string; nonce: string }>;
    call.on('data', (res) => {
      call.write({ node, resource_names: ['default'], type_url: SECRET_TYPE_URL, version_info: res.version_info, response_nonce: res.nonce });
      observe(res.version_info);
    });
    call.on('error', (err) => process.send!({ type: 'error', message: String(err) }));
    call.write({ node, resource_names: ['default'], type_url: SECRET_TYPE_URL });
  }
}
process.send!({ type: 'opened', total });
process.on('message', (m: { type: string }) => {
  if (m.type === 'exit') process.exit(0);
});
