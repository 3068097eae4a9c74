// The transport floor for the end-to-end benchmark: a grpc-js server over TLS whose CreateCertificate
// does nothing but answer a fixed response of the size meshca's is. What it costs per request is
// what any Node gRPC-over-TLS server pays on this machine before doing any CA work: the ceiling
// meshca is measured against. With FLOOR_WORKERS > 1 it runs that many node:cluster workers
// sharing the port, as `meshca serve --workers N` does.
//
// Environment: FLOOR_CERT, FLOOR_KEY (PEM files), FLOOR_RESPONSE (JSON file: the cert_chain to
// answer), FLOOR_WORKERS (default 1). Prints "floor listening <host:port> <pids…>" once serving.

import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ISTIO_CA_SERVICE, serviceDefinition } from '../src/transport/index.ts';

const workers = Number(process.env.FLOOR_WORKERS ?? 1);

async function serve(): Promise<string> {
  const certChain = JSON.parse(readFileSync(process.env.FLOOR_RESPONSE!, 'utf8')) as string[];
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 100, 'grpc.keepalive_permit_without_calls': 1 });
  server.addService(serviceDefinition(ISTIO_CA_SERVICE), {
    CreateCertificate: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, { cert_chain: certChain }),
  });
  const creds = grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(process.env.FLOOR_CERT!), private_key: readFileSync(process.env.FLOOR_KEY!) }]);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  return `127.0.0.1:${port}`;
}

if (workers <= 1) {
  const address = await serve();
  process.stdout.write(`floor listening ${address} ${process.pid}\n`);
} else if (cluster.isPrimary) {
  const ready: Promise<string>[] = [];
  for (let i = 0; i < workers; i++) {
    const worker = cluster.fork();
    ready.push(new Promise((resolve) => worker.once('message', (m: { address: string }) => resolve(`${m.address} ${worker.process.pid}`))));
  }
  const answers = await Promise.all(ready);
  process.stdout.write(`floor listening ${answers[0]!.split(' ')[0]} ${process.pid} ${answers.map((a) => a.split(' ')[1]).join(' ')}\n`);
  process.once('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    process.exit(0);
  });
} else {
  const address = await serve();
  process.send!({ address });
  process.once('SIGTERM', () => process.exit(0));
}
