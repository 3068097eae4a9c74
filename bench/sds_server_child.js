// The SDS server for bench/sds.ts, in a process of its own that runs the JavaScript build as the
// agent does, under whatever NODE_OPTIONS the bench gives it (plain JavaScript: --jitless leaves
// no WebAssembly for the type stripper). It serves the secrets the bench sends and reports its
// memory after full GCs (--expose-gc).

import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../dist/observability/index.js';
import { addSdsService, SecretStore, tlsCertificateSecret } from '../dist/sds/index.js';

function memory() {
  for (let i = 0; i < 3; i++) globalThis.gc();
  const m = process.memoryUsage();
  // arrayBuffers is already part of external.
  return { heap: m.heapUsed + m.external, reserved: m.heapTotal + m.external, rss: m.rss };
}

const [socket] = process.argv.slice(2);
const store = new SecretStore();
const server = new grpc.Server();
addSdsService(server, { source: store, log: createLogger('warn') });

process.on('message', (m) => {
  if (m.type === 'secret') {
    store.set(tlsCertificateSecret('default', m.chainPem, m.privateKeyPem, m.notAfterMs));
    process.send({ type: 'set' });
  } else if (m.type === 'memory') {
    process.send({ type: 'memory', memory: memory() });
  } else if (m.type === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send({ type: 'cpu', cpuMs: (user + system) / 1000 });
  } else if (m.type === 'exit') {
    server.forceShutdown();
    process.exit(0);
  }
});

server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  process.send({ type: 'listening' });
});
