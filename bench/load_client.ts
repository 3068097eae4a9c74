// The load generator for the end-to-end benchmarks, run in its own process (child_process.fork) so
// its CPU is not the server's: CreateCertificate over gRPC/TLS (bearer tokens or mutual TLS) or
// cfssl's HTTP sign API. The parent sends one phase at a time over IPC and gets its figures back.
// Each phase presents the (token, CSR) pairs of its range (modulo their number), `concurrency` at a time.

import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { ISTIO_CA_SERVICE, serviceClient } from '../src/transport/index.ts';
import { createCsrPem, generateKeyPair, toPem } from '../src/pki/index.ts';

export interface LoadSetup {
  readonly kind: 'grpc' | 'cfssl';
  readonly address: string;
  readonly rootPem?: string;
  readonly serverName?: string;
  /** File with { tokens: string[]; csrs: string[] } (one pair per simulated pod). */
  readonly dataFile: string;
  /** gRPC connections to spread the calls over (pods do not share a connection). */
  readonly channels: number;
  /** Renewal by mutual TLS: each channel first gets a certificate with token i, then presents it. */
  readonly mtls?: boolean;
}

export interface LoadPhase {
  readonly from: number;
  readonly to: number;
  readonly concurrency: number;
  /** Retry UNAVAILABLE after the hint in its message (the agent's behaviour), until this long has passed. */
  readonly retryForMs?: number;
  readonly deadlineMs?: number;
  /** Index modulo this many pairs (default: all of them), to present a warmed set of tokens again. */
  readonly wrap?: number;
}

export interface PhaseResult {
  readonly ok: number;
  readonly errors: Record<string, number>;
  readonly retries: number;
  readonly seconds: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** CPU seconds this load generator spent in the phase. */
  readonly clientCpuSeconds: number;
}

type Call = (token: string, csr: string, channel: number, deadlineMs: number) => Promise<void>;

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function grpcCaller(setup: LoadSetup, data: { tokens: string[] }): { call: Call; init: () => Promise<void> } {
  const Ctor = serviceClient(ISTIO_CA_SERVICE);
  const opts = (i: number) => ({
    ...(setup.serverName ? { 'grpc.ssl_target_name_override': setup.serverName } : {}),
    // A distinct option keeps grpc-js from sharing one subchannel (one TCP connection) between clients.
    'grpc.bench_channel': i,
  });
  const root = Buffer.from(setup.rootPem!);
  type Client = grpc.Client & Record<string, Function>;
  const clients: Client[] = [];
  const unary = (client: Client, token: string | undefined, csr: string, deadlineMs: number) =>
    new Promise<void>((resolve, reject) => {
      const md = new grpc.Metadata();
      if (token) md.set('authorization', `Bearer ${token}`);
      client.CreateCertificate!({ csr, validity_duration: 3600 }, md, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null) => (err ? reject(err) : resolve()));
    });
  async function init(): Promise<void> {
    for (let i = 0; i < setup.channels; i++) {
      if (!setup.mtls) {
        clients.push(new Ctor(setup.address, grpc.credentials.createSsl(root), opts(i)) as Client);
        continue;
      }
      // The workload's current certificate, got once with its token; renewals then present it.
      const key = generateKeyPair('ec-p256').privateKey;
      const bootstrap = new Ctor(setup.address, grpc.credentials.createSsl(root), opts(-1 - i)) as Client;
      const chain = await new Promise<string[]>((resolve, reject) => {
        const md = new grpc.Metadata();
        md.set('authorization', `Bearer ${data.tokens[i]}`);
        bootstrap.CreateCertificate!({ csr: createCsrPem(key), validity_duration: 3600 }, md, { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null, res: { cert_chain: string[] }) =>
          err ? reject(err) : resolve(res.cert_chain),
        );
      });
      bootstrap.close();
      const keyPem = toPem(new Uint8Array(key.export({ format: 'der', type: 'pkcs8' })), 'PRIVATE KEY');
      const certs = Buffer.from(chain.slice(0, -1).join(''));
      clients.push(new Ctor(setup.address, grpc.credentials.createSsl(root, Buffer.from(keyPem), certs), opts(i)) as Client);
    }
  }
  return {
    init,
    call: (token, csr, channel, deadlineMs) => unary(clients[channel % clients.length]!, setup.mtls ? undefined : token, csr, deadlineMs),
  };
}

function cfsslCaller(setup: LoadSetup): { call: Call; init: () => Promise<void> } {
  const [host, port] = setup.address.split(':');
  const agent = new http.Agent({ keepAlive: true, maxSockets: setup.channels });
  const call: Call = (_token, csr, _channel, deadlineMs) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ certificate_request: csr });
      const req = http.request(
        { host, port: Number(port), path: '/api/v1/cfssl/sign', method: 'POST', agent, timeout: deadlineMs, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            if (res.statusCode === 200 && text.includes('"success":true')) resolve();
            else reject(Object.assign(new Error(`cfssl ${res.statusCode}: ${text.slice(0, 200)}`), { code: `HTTP_${res.statusCode}` }));
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      req.on('error', reject);
      req.end(body);
    });
  return { call, init: async () => {} };
}

/** "…; retry in 5s" (the CA's AUTHN_UNAVAILABLE message) → 5000 ms. */
function retryHintMs(err: grpc.ServiceError): number | undefined {
  if (err.code !== grpc.status.UNAVAILABLE) return undefined;
  const m = /retry in (\d+)s/.exec(err.details ?? '');
  return m ? Number(m[1]) * 1000 : 1000;
}

async function runPhase(call: Call, data: { tokens: string[]; csrs: string[] }, phase: LoadPhase): Promise<PhaseResult> {
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let retries = 0;
  let next = phase.from;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const deadlineMs = phase.deadlineMs ?? 30_000;
  await Promise.all(
    Array.from({ length: phase.concurrency }, async (_, worker) => {
      for (;;) {
        const n = next++;
        if (n >= phase.to) return;
        const t0 = performance.now();
        for (;;) {
          try {
            const k = n % (phase.wrap ?? data.tokens.length);
            await call(data.tokens[k]!, data.csrs[k]!, worker, deadlineMs);
            latencies.push(performance.now() - t0);
            break;
          } catch (err) {
            const hint = phase.retryForMs !== undefined ? retryHintMs(err as grpc.ServiceError) : undefined;
            if (hint !== undefined && performance.now() - start + hint < phase.retryForMs!) {
              retries++;
              // Jitter as the agent's backoff does, so the retries do not all land at once.
              await new Promise((r) => setTimeout(r, hint * (0.5 + Math.random())));
              continue;
            }
            const code = String((err as { code?: unknown }).code ?? 'ERROR');
            errors[code] = (errors[code] ?? 0) + 1;
            break;
          }
        }
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  return {
    ok: latencies.length,
    errors,
    retries,
    seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? NaN,
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

if (process.send) {
  let state: { call: Call; data: { tokens: string[]; csrs: string[] } } | undefined;
  process.on('message', (msg: { setup?: LoadSetup; phase?: LoadPhase; exit?: true }) => {
    void (async () => {
      try {
        if (msg.setup) {
          const data = JSON.parse(readFileSync(msg.setup.dataFile, 'utf8')) as { tokens: string[]; csrs: string[] };
          const caller = msg.setup.kind === 'cfssl' ? cfsslCaller(msg.setup) : grpcCaller(msg.setup, data);
          await caller.init();
          state = { call: caller.call, data };
          process.send!({ ready: true });
        } else if (msg.phase) {
          process.send!({ result: await runPhase(state!.call, state!.data, msg.phase) });
        } else if (msg.exit) {
          process.exit(0);
        }
      } catch (err) {
        process.send!({ error: String((err as Error).stack ?? err) });
      }
    })();
  });
}
