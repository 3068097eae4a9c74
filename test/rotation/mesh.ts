// A small service mesh for rotation tests and the rotation benchmark: N in-process agents (each on
// its own SDS Unix socket), an Envoy-like SDS watcher per agent, and pairs of node:tls servers and
// clients that handshake continuously with the agents' current secrets, each side checking the
// peer's SPIFFE ID against its ROOTCA. Counts every handshake and keeps the first failures.

import { X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { startAgent, type RunningAgent } from '../../src/agent/index.ts';
import { loadDevIssuer } from '../../src/authn/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import { SECRET_TYPE_URL } from '../../src/sds/index.ts';
import { systemClock } from '../../src/time/index.ts';
import { decodeSecretAny, sdsClient } from '../sds/envoy_client.ts';

export interface MeshSecrets {
  chainPem: string;
  privateKeyPem: string;
  bundlePem: string;
  context: tls.SecureContext;
}

export interface MeshAgent {
  readonly index: number;
  readonly spiffeId: string;
  readonly running: RunningAgent;
  /** What SDS pushed last (both secrets present). */
  secrets?: MeshSecrets;
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export interface HandshakeStats {
  ok: number;
  failed: number;
  failures: string[];
  /** Why the server side refused a handshake (the client only sees the connection close). */
  serverErrors: string[];
}

const quiet = () => createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));

export function spiffeIdOfCert(raw: Buffer | undefined): string | undefined {
  if (!raw) return undefined;
  return /URI:(spiffe:\/\/[^,\s]+)/.exec(new X509Certificate(raw).subjectAltName ?? '')?.[1];
}

/** Subscribes to default + ROOTCA on the agent's socket the way Envoy does, ACKing each push. */
function watchSds(socket: string, onSecrets: (s: { chainPem?: string; privateKeyPem?: string; bundlePem?: string }) => void): () => void {
  const client = sdsClient(`unix:${socket}`);
  const call = client.StreamSecrets!(new grpc.Metadata()) as grpc.ClientDuplexStream<object, { version_info: string; nonce: string; resources: { type_url: string; value: Buffer }[] }>;
  const send = (fields: object) =>
    call.write({ node: { id: 'sidecar~10.0.0.1~mesh.default~default.svc.cluster.local', cluster: 'mesh' }, resource_names: ['default', 'ROOTCA'], type_url: SECRET_TYPE_URL, ...fields });
  call.on('data', (res) => {
    const out: { chainPem?: string; privateKeyPem?: string; bundlePem?: string } = {};
    for (const any of res.resources ?? []) {
      const s = decodeSecretAny(any);
      if (s.chainPem) out.chainPem = s.chainPem;
      if (s.privateKeyPem) out.privateKeyPem = s.privateKeyPem;
      if (s.bundlePem) out.bundlePem = s.bundlePem;
    }
    onSecrets(out);
    send({ version_info: res.version_info, response_nonce: res.nonce });
  });
  call.on('error', () => undefined);
  send({ version_info: '' });
  return () => {
    call.cancel();
    client.close();
  };
}

export async function startMeshAgent(opts: { index: number; dir: string; keysDir: string; caAddress: string; rootCertPath: string; ttlMs: number; namespace?: string }): Promise<MeshAgent> {
  const home = join(opts.dir, `agent-${opts.index}`);
  mkdirSync(home, { recursive: true });
  const ns = opts.namespace ?? 'mesh';
  const sa = `svc-${opts.index}`;
  const issuer = await loadDevIssuer(opts.keysDir, false);
  writeFileSync(join(home, 'token'), await issuer.mint({ namespace: ns, serviceAccount: sa, audience: 'meshca', ttlMs: 3_600_000, nowMs: Date.now() }));
  const running = await startAgent({
    caAddress: opts.caAddress,
    rootCertPath: opts.rootCertPath,
    tokenFilePath: join(home, 'token'),
    sdsSocketPath: join(home, 'sds.sock'),
    ttlMs: opts.ttlMs,
    bundlePollMs: 60_000,
    clock: systemClock,
    log: quiet(),
  });
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const partial: { chainPem?: string; privateKeyPem?: string; bundlePem?: string } = {};
  const agent: MeshAgent = {
    index: opts.index,
    spiffeId: `spiffe://cluster.local/ns/${ns}/sa/${sa}`,
    running,
    ready,
    close: async () => {
      stop();
      await running.stop();
    },
  };
  const stop = watchSds(join(home, 'sds.sock'), (s) => {
    Object.assign(partial, s);
    if (!partial.chainPem || !partial.privateKeyPem || !partial.bundlePem) return;
    agent.secrets = {
      chainPem: partial.chainPem,
      privateKeyPem: partial.privateKeyPem,
      bundlePem: partial.bundlePem,
      context: tls.createSecureContext({ key: partial.privateKeyPem, cert: partial.chainPem, ca: partial.bundlePem }),
    };
    resolveReady();
  });
  return agent;
}

/** One server agent and one client agent handshaking in `loops` concurrent loops until stopped. */
export class HandshakePair {
  readonly #server: tls.Server;
  readonly #serverAgent: MeshAgent;
  readonly #clientAgent: MeshAgent;
  readonly #stats: HandshakeStats;
  #port = 0;
  #running = false;
  #loops: Promise<void>[] = [];
  #contextOf = new WeakMap<MeshSecrets, true>();

  constructor(serverAgent: MeshAgent, clientAgent: MeshAgent, stats: HandshakeStats) {
    this.#serverAgent = serverAgent;
    this.#clientAgent = clientAgent;
    this.#stats = stats;
    const s = serverAgent.secrets!;
    this.#server = tls.createServer({ key: s.privateKeyPem, cert: s.chainPem, ca: s.bundlePem, requestCert: true, rejectUnauthorized: true });
    this.#contextOf.set(s, true);
    this.#server.on('secureConnection', (sock) => {
      const peer = spiffeIdOfCert(sock.getPeerX509Certificate()?.raw);
      if (peer !== this.#clientAgent.spiffeId) {
        this.#fail(`server saw ${peer ?? 'no certificate'} instead of ${this.#clientAgent.spiffeId}`);
        sock.destroy();
        return;
      }
      sock.end('ok');
    });
    // The client sees these too (as a closed connection); keep the server's reason for the report.
    this.#server.on('tlsClientError', (err) => {
      if (this.#stats.serverErrors.length < 20) this.#stats.serverErrors.push(err.message);
    });
  }

  #fail(reason: string): void {
    this.#stats.failed++;
    if (this.#stats.failures.length < 20) this.#stats.failures.push(reason);
  }

  async start(loops: number): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    this.#port = (this.#server.address() as AddressInfo).port;
    this.#running = true;
    this.#loops = Array.from({ length: loops }, () => this.#loop());
  }

  /** Follows the server agent's latest secrets (what Envoy does on an SDS push). */
  #refreshServer(): void {
    const s = this.#serverAgent.secrets!;
    if (this.#contextOf.has(s)) return;
    this.#contextOf.set(s, true);
    this.#server.setSecureContext({ key: s.privateKeyPem, cert: s.chainPem, ca: s.bundlePem });
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      this.#refreshServer();
      try {
        await this.#handshake();
        this.#stats.ok++;
      } catch (err) {
        if (this.#running) this.#fail(err instanceof Error ? err.message : String(err));
      }
    }
  }

  #handshake(): Promise<void> {
    const c = this.#clientAgent.secrets!;
    const expected = this.#serverAgent.spiffeId;
    return new Promise((resolve, reject) => {
      const sock = tls.connect({
        host: '127.0.0.1',
        port: this.#port,
        // RFC 6066: no SNI for an address; the peer is identified by its SPIFFE ID instead.
        servername: '',
        secureContext: c.context,
        // SPIFFE: the server is checked by its URI SAN against the client's ROOTCA, not by DNS name.
        checkServerIdentity: (_host, cert) => (spiffeIdOfCert(cert.raw) === expected ? undefined : new Error(`client saw ${spiffeIdOfCert(cert.raw)} instead of ${expected}`)),
      });
      let got = '';
      sock.setTimeout(10_000, () => sock.destroy(new Error('handshake timed out')));
      sock.on('data', (d) => (got += d));
      sock.once('end', () => (got === 'ok' ? resolve() : reject(new Error(`server closed without confirming our identity (${got || 'nothing'})`))));
      sock.once('error', reject);
    });
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.allSettled(this.#loops);
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

export async function startHandshakes(agents: readonly MeshAgent[], loopsPerPair: number): Promise<{ stats: HandshakeStats; stop: () => Promise<void> }> {
  const stats: HandshakeStats = { ok: 0, failed: 0, failures: [], serverErrors: [] };
  const pairs: HandshakePair[] = [];
  for (let i = 0; i + 1 < agents.length; i += 2) pairs.push(new HandshakePair(agents[i]!, agents[i + 1]!, stats));
  await Promise.all(pairs.map((p) => p.start(loopsPerPair)));
  return { stats, stop: async () => void (await Promise.all(pairs.map((p) => p.stop()))) };
}
