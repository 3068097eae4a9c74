// A small service mesh for rotation tests and the rotation benchmark: N in-process agents (each on
// its own SDS Unix socket), an Envoy-like SDS watcher per agent, and pairs of node:tls servers and
// clients that handshake continuously with the agents' current secrets, each side checking the
// peer's SPIFFE ID against its ROOTCA. Counts every handshake and explains every failure: which
// side refused, why, in which phase, and what each side held. Never resumes a session.

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
import { systemClock, type Clock } from '../../src/time/index.ts';
import { decodeSecretAny, sdsClient } from '../sds/envoy_client.ts';
import { pemBlocks } from '../helpers/csr.ts';

export interface MeshSecrets {
  chainPem: string;
  privateKeyPem: string;
  bundlePem: string;
  context: tls.SecureContext;
  /** When the proxy got them (Date.now()), to tell a stale secret from a fresh one. */
  receivedAtMs: number;
}

/** What a TLS endpoint needs: whose identity it is and the latest secrets SDS pushed. */
export interface SecretsHolder {
  readonly spiffeId: string;
  secrets?: MeshSecrets;
}

export interface MeshAgent extends SecretsHolder {
  readonly index: number;
  readonly running: RunningAgent;
  readonly sdsSocket: string;
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export interface HandshakeFailure {
  /** Date.now() when the client gave up. */
  readonly atMs: number;
  readonly phase: string;
  readonly pair: number;
  /** Who refused: the server (the client's certificate), the client (the server's), or neither (timeout, reset). */
  readonly refusedBy: 'server' | 'client' | 'neither';
  readonly reason: string;
  readonly client: string;
  readonly server: string;
}

export interface HandshakeStats {
  ok: number;
  failed: number;
  /** One line per failure (the first 50), readable in a test's failure message. */
  failures: string[];
  details: HandshakeFailure[];
  /** Every failure (not only the first 50), counted by "<refusedBy>: <reason>". */
  byReason: Record<string, number>;
  /** Errors the servers saw that are not a counted failure of their own (e.g. the client's alert). */
  serverErrors: string[];
  /** Set by whoever drives the rotation; every failure is tagged with it. */
  phase: string;
}

const KEEP_FAILURES = 50;

export function newHandshakeStats(): HandshakeStats {
  return { ok: 0, failed: 0, failures: [], details: [], byReason: {}, serverErrors: [], phase: '' };
}

const quiet = () => createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));

function spiffeIdOfSan(san: string | undefined): string | undefined {
  return /URI:(spiffe:\/\/[^,\s]+)/.exec(san ?? '')?.[1];
}

export function spiffeIdOfCert(raw: Buffer | undefined): string | undefined {
  return raw ? spiffeIdOfSan(new X509Certificate(raw).subjectAltName) : undefined;
}

export function makeSecrets(chainPem: string, privateKeyPem: string, bundlePem: string, receivedAtMs: number): MeshSecrets {
  return { chainPem, privateKeyPem, bundlePem, receivedAtMs, context: tls.createSecureContext({ key: privateKeyPem, cert: chainPem, ca: bundlePem }) };
}

/** A root's name in failure reports: the first 8 hex digits of its SHA-256 fingerprint. */
export function rootLabel(cert: X509Certificate): string {
  return cert.fingerprint256.replaceAll(':', '').slice(0, 8).toLowerCase();
}

/** What one side held, for a failure report: leaf, its remaining life, the root it chains to, the bundle. */
export function describeSecrets(s: MeshSecrets | undefined, nowMs: number): string {
  if (!s) return 'no secrets';
  const chain = pemBlocks(s.chainPem).map((p) => new X509Certificate(p));
  const roots = pemBlocks(s.bundlePem).map((p) => new X509Certificate(p));
  const leaf = chain[0]!;
  const top = chain[chain.length - 1]!;
  const issuerRoot = roots.find((r) => top.checkIssued(r) && top.verify(r.publicKey));
  const leftS = ((Date.parse(leaf.validTo) - nowMs) / 1000).toFixed(1);
  return (
    `leaf ${leaf.serialNumber.slice(0, 8).toLowerCase()} (${leftS} s left) via intermediate ${rootLabel(top)} ` +
    `to ${issuerRoot ? `root ${rootLabel(issuerRoot)}` : 'a root not in its own bundle'}, bundle [${roots.map(rootLabel).join(', ')}], ` +
    `pushed ${((nowMs - s.receivedAtMs) / 1000).toFixed(1)} s ago`
  );
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

/** An Envoy-like proxy's view of one agent: follows default + ROOTCA on its SDS socket. */
export function followSds(socket: string, spiffeId: string): SecretsHolder & { ready: Promise<void>; close: () => void } {
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const partial: { chainPem?: string; privateKeyPem?: string; bundlePem?: string } = {};
  const holder: SecretsHolder & { ready: Promise<void>; close: () => void } = { spiffeId, ready, close: () => stop() };
  const stop = watchSds(socket, (s) => {
    Object.assign(partial, s);
    if (!partial.chainPem || !partial.privateKeyPem || !partial.bundlePem) return;
    holder.secrets = makeSecrets(partial.chainPem, partial.privateKeyPem, partial.bundlePem, Date.now());
    resolveReady();
  });
  return holder;
}

export async function startMeshAgent(opts: {
  index: number;
  dir: string;
  keysDir: string;
  caAddress: string;
  rootCertPath: string;
  ttlMs: number;
  namespace?: string;
  /** false: start the agent only; proxies elsewhere (e.g. worker threads) follow its socket. */
  watch?: boolean;
  clock?: Clock;
}): Promise<MeshAgent> {
  const home = join(opts.dir, `agent-${opts.index}`);
  mkdirSync(home, { recursive: true });
  const ns = opts.namespace ?? 'mesh';
  const sa = `svc-${opts.index}`;
  const issuer = await loadDevIssuer(opts.keysDir, false);
  writeFileSync(join(home, 'token'), await issuer.mint({ namespace: ns, serviceAccount: sa, audience: 'meshca', ttlMs: 3_600_000, nowMs: Date.now() }));
  const sdsSocket = join(home, 'sds.sock');
  const running = await startAgent({
    caAddress: opts.caAddress,
    rootCertPath: opts.rootCertPath,
    tokenFilePath: join(home, 'token'),
    sdsSocketPath: sdsSocket,
    ttlMs: opts.ttlMs,
    bundlePollMs: 60_000,
    clock: opts.clock ?? systemClock,
    log: quiet(),
  });
  const spiffeId = `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
  const proxy = opts.watch === false ? undefined : followSds(sdsSocket, spiffeId);
  const agent: MeshAgent = {
    index: opts.index,
    spiffeId,
    running,
    sdsSocket,
    ready: proxy ? proxy.ready : running.agent.firstCertificate(),
    get secrets() {
      return proxy?.secrets;
    },
    close: async () => {
      proxy?.close();
      await running.stop();
    },
  };
  return agent;
}

/**
 * One server and one client handshaking in `loops` concurrent loops until stopped. Each handshake
 * is a new TCP connection and a full TLS handshake (no session is ever offered for resumption).
 */
export class HandshakePair {
  readonly #server: tls.Server;
  readonly #serverSide: SecretsHolder;
  readonly #clientSide: SecretsHolder;
  readonly #stats: HandshakeStats;
  readonly #number: number;
  /** Why the server refused the client connecting from this local port (filled before it closes). */
  readonly #refusals = new Map<number, string>();
  #serverSecrets: MeshSecrets;
  #port = 0;
  #running = false;
  #loops: Promise<void>[] = [];

  constructor(serverSide: SecretsHolder, clientSide: SecretsHolder, stats: HandshakeStats, number = 0) {
    this.#serverSide = serverSide;
    this.#clientSide = clientSide;
    this.#stats = stats;
    this.#number = number;
    const s = serverSide.secrets!;
    this.#serverSecrets = s;
    // Node's rejectUnauthorized does exactly this check (OpenSSL's verify result) and then closes
    // without an alert or a reason; checking it here keeps the reason for the report.
    this.#server = tls.createServer({ key: s.privateKeyPem, cert: s.chainPem, ca: s.bundlePem, requestCert: true, rejectUnauthorized: false });
    this.#server.on('secureConnection', (sock) => {
      const peerCert = sock.getPeerX509Certificate();
      let refusal: string | undefined;
      if (!sock.authorized) refusal = `client certificate not accepted: ${String(sock.authorizationError ?? 'no certificate')}`;
      else if (spiffeIdOfSan(peerCert?.subjectAltName) !== this.#clientSide.spiffeId) refusal = `server saw ${spiffeIdOfSan(peerCert?.subjectAltName) ?? 'no SPIFFE ID'} instead of ${this.#clientSide.spiffeId}`;
      if (refusal !== undefined) {
        if (sock.remotePort !== undefined) this.#refusals.set(sock.remotePort, refusal);
        sock.destroy();
        return;
      }
      sock.end('ok');
    });
    // E.g. the client's alert when it refused the server's certificate; the client counts that one.
    this.#server.on('tlsClientError', (err) => {
      if (this.#stats.serverErrors.length < KEEP_FAILURES) this.#stats.serverErrors.push(`[${this.#stats.phase}] ${err.message}`);
    });
  }

  async start(loops: number): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    this.#port = (this.#server.address() as AddressInfo).port;
    this.#running = true;
    this.#loops = Array.from({ length: loops }, () => this.#loop());
  }

  /** Follows the server side's latest secrets (what Envoy does on an SDS push). */
  #refreshServer(): void {
    const s = this.#serverSide.secrets!;
    if (s === this.#serverSecrets) return;
    this.#serverSecrets = s;
    this.#server.setSecureContext({ key: s.privateKeyPem, cert: s.chainPem, ca: s.bundlePem });
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      this.#refreshServer();
      const c = this.#clientSide.secrets!;
      const serverHeld = this.#serverSecrets;
      const outcome = await this.#handshake(c);
      if (outcome === undefined) {
        this.#stats.ok++;
      } else if (this.#running) {
        this.#fail(outcome, c, serverHeld);
      }
    }
  }

  #fail(outcome: { refusedBy: HandshakeFailure['refusedBy']; reason: string }, client: MeshSecrets, server: MeshSecrets): void {
    this.#stats.failed++;
    const key = `${outcome.refusedBy}: ${outcome.reason}`;
    this.#stats.byReason[key] = (this.#stats.byReason[key] ?? 0) + 1;
    if (this.#stats.details.length >= KEEP_FAILURES) return;
    const now = Date.now();
    const f: HandshakeFailure = { atMs: now, phase: this.#stats.phase, pair: this.#number, ...outcome, client: describeSecrets(client, now), server: describeSecrets(server, now) };
    this.#stats.details.push(f);
    this.#stats.failures.push(`[${f.phase || 'run'}] pair ${f.pair}: refused by ${f.refusedBy}: ${f.reason}; client held ${f.client}; server held ${f.server}`);
  }

  /** Resolves undefined on success, or who refused and why. */
  #handshake(c: MeshSecrets): Promise<{ refusedBy: HandshakeFailure['refusedBy']; reason: string } | undefined> {
    const expected = this.#serverSide.spiffeId;
    return new Promise((resolve) => {
      let localPort: number | undefined;
      let secure = false;
      let settled = false;
      const finish = (clientReason: string | undefined, clientRefused: boolean) => {
        if (settled) return;
        settled = true;
        sock.destroy();
        const serverReason = localPort === undefined ? undefined : this.#refusals.get(localPort);
        if (localPort !== undefined) this.#refusals.delete(localPort);
        if (clientReason === undefined) resolve(undefined);
        else if (serverReason !== undefined) resolve({ refusedBy: 'server', reason: serverReason });
        else resolve({ refusedBy: clientRefused ? 'client' : 'neither', reason: clientReason });
      };
      const sock = tls.connect({
        host: '127.0.0.1',
        port: this.#port,
        // RFC 6066: no SNI for an address; the peer is identified by its SPIFFE ID instead.
        servername: '',
        secureContext: c.context,
        // SPIFFE: the server is checked by its URI SAN against the client's ROOTCA, not by DNS name.
        checkServerIdentity: (_host, cert) => {
          const seen = spiffeIdOfSan(cert.subjectaltname);
          return seen === expected ? undefined : new Error(`client saw ${seen ?? 'no SPIFFE ID'} instead of ${expected}`);
        },
      });
      let got = '';
      sock.once('connect', () => (localPort = sock.localPort));
      sock.once('secureConnect', () => (secure = true));
      sock.setTimeout(10_000, () => finish('handshake timed out after 10 s', false));
      sock.on('data', (d) => (got += d));
      sock.once('end', () => finish(got === 'ok' ? undefined : `server closed without confirming our identity (${got || 'nothing'})`, false));
      sock.once('error', (err: NodeJS.ErrnoException) => {
        // Before secureConnect, an error is the client's own refusal of the server's certificate
        // (OpenSSL's verify code, or checkServerIdentity's message).
        finish(`${err.code ? `${err.code}: ` : ''}${err.message}`, !secure && err.code !== 'ECONNRESET' && err.code !== 'ECONNREFUSED');
      });
    });
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.allSettled(this.#loops);
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

export interface RunningHandshakes {
  readonly stats: HandshakeStats;
  /** Tags failures from now on with `phase`. */
  setPhase(phase: string): void;
  stop(): Promise<void>;
}

/** Pairs holders 0-1, 2-3, … (server, client) and starts them; the stats are shared. */
export async function startHandshakes(holders: readonly SecretsHolder[], loopsPerPair: number, firstPairNumber = 0, stats = newHandshakeStats()): Promise<RunningHandshakes> {
  const pairs: HandshakePair[] = [];
  for (let i = 0; i + 1 < holders.length; i += 2) pairs.push(new HandshakePair(holders[i]!, holders[i + 1]!, stats, firstPairNumber + i / 2));
  await Promise.all(pairs.map((p) => p.start(loopsPerPair)));
  return {
    stats,
    setPhase: (phase) => void (stats.phase = phase),
    stop: async () => void (await Promise.all(pairs.map((p) => p.stop()))),
  };
}
