// End-to-end CreateCertificate: `meshca serve` in its own process, a grpc-js client over TLS
// with JWT bearer tokens, 64 requests in flight. Reports requests/s and latency percentiles.

import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { loadDevIssuer } from '../src/authn/index.ts';
import { CaClient } from '../test/helpers/ca_client.ts';
import { startServeProcess } from '../test/helpers/serve.ts';
import { fmt, percentile, writeSection } from './report.ts';

const CONCURRENCY = 64;
const DURATION_MS = Number(process.env.BENCH_SECONDS ?? 5) * 1000;
const WORKLOADS = 256;

async function csrPem(): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as { privateKey: CryptoKey; publicKey: CryptoKey };
  return (await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=bench', keys, signingAlgorithm: alg }, webcrypto as Crypto)).toString('pem');
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  total: number;
}

/** Drives `concurrency` CreateCertificate loops for `durationMs` against a running CA. */
export async function driveLoad(client: CaClient, tokens: string[], csrs: string[], concurrency: number, durationMs: number): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() - start < durationMs) {
        const n = i++;
        const t0 = performance.now();
        try {
          await client.createCertificate({ csr: csrs[n % csrs.length]!, token: tokens[n % tokens.length]!, validityDuration: 3600 });
          latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors, total: latencies.length };
}

export async function run(): Promise<void> {
  x509.cryptoProvider.set(webcrypto as Crypto);
  void generateKeyPairSync;
  const dir = mkdtempSync(join(tmpdir(), 'meshca-bench-'));
  const keys = join(dir, 'keys');
  const serve = await startServeProcess(['--keys', keys, '--db', 'memory:']);
  try {
    const dev = await loadDevIssuer(keys, false);
    const tokens = await Promise.all(
      Array.from({ length: WORKLOADS }, (_, i) => dev.mint({ namespace: `ns${i % 16}`, serviceAccount: `sa${i}`, podName: `pod-${i}`, audience: 'meshca', ttlMs: 3600_000, nowMs: Date.now() })),
    );
    const csrs = await Promise.all(Array.from({ length: CONCURRENCY }, csrPem));
    const client = new CaClient({ address: serve.grpcAddress, rootPem: readFileSync(join(keys, 'root-cert.pem'), 'utf8'), serverName: 'localhost' });
    await driveLoad(client, tokens, csrs, CONCURRENCY, 1000); // warm up
    const r = await driveLoad(client, tokens, csrs, CONCURRENCY, DURATION_MS);
    client.close();
    writeSection(
      'e2e',
      [
        '## End to end: CreateCertificate over TLS',
        '',
        `\`meshca serve\` in its own process (ledger \`memory:\`, logging one line per request); one grpc-js client process over TLS on loopback, ${CONCURRENCY} requests in flight, ` +
          `${WORKLOADS} distinct development JWTs (ES256, verified with jose on every request), ECDSA P-256 CSRs, ${DURATION_MS / 1000} s. ` +
          'Client and server share the machine’s two cores.',
        '',
        '| requests/s | p50 | p99 | errors |',
        '| ---: | ---: | ---: | ---: |',
        `| ${fmt(r.rps)} | ${fmt(r.p50, 1)} ms | ${fmt(r.p99, 1)} ms | ${r.errors} |`,
      ].join('\n'),
    );
  } finally {
    serve.child.kill('SIGTERM');
    await serve.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}
