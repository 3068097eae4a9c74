// Test wiring for the agent: a real in-process CA (the lead's `meshca serve`), development
// tokens, an agent on a Unix socket, and helpers to check what it serves with real TLS and openssl.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { startAgent, type RunningAgent } from '../../src/agent/index.ts';
import { loadDevIssuer } from '../../src/authn/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import { systemClock, type Clock } from '../../src/time/index.ts';
import { startTestCa, type TestCa } from '../helpers/serve.ts';
import { opensslVerify, pemBlocks } from '../helpers/csr.ts';

export { pemBlocks };
import { EnvoyLikeStream, sdsClient, type DecodedSecret } from '../sds/envoy_client.ts';
import { FakeClock } from '../fakes/clock.ts';

export function scratchDir(): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'meshca-agent-'));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export async function startCa(keysDir: string, listen = '127.0.0.1:0', clock?: Clock): Promise<TestCa> {
  return startTestCa(['--listen', listen], { keysDir, ...(clock ? { clock } : {}) });
}

export async function writeToken(keysDir: string, path: string, ns = 'default', sa = 'web', life: { ttlMs?: number; nowMs?: number } = {}): Promise<void> {
  const issuer = await loadDevIssuer(keysDir, false);
  const token = await issuer.mint({ namespace: ns, serviceAccount: sa, audience: 'meshca', ttlMs: life.ttlMs ?? 600_000, nowMs: life.nowMs ?? Date.now() });
  writeFileSync(path, token);
}

export interface TestAgent {
  running: RunningAgent;
  socket: string;
  logs: () => Record<string, unknown>[];
  stop: () => Promise<void>;
}

export async function runTestAgent(opts: { caAddress: string; dir: string; rootCertPath: string; ttlMs: number; outputDir?: string; socket?: string; clock?: Clock }): Promise<TestAgent> {
  const chunks: string[] = [];
  const log = createLogger('debug', new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) }));
  const socket = opts.socket ?? join(opts.dir, 'uds', 'socket');
  const running = await startAgent({
    caAddress: opts.caAddress,
    rootCertPath: opts.rootCertPath,
    tokenFilePath: join(opts.dir, 'token'),
    sdsSocketPath: socket,
    ...(opts.outputDir ? { outputDir: opts.outputDir } : {}),
    ttlMs: opts.ttlMs,
    bundlePollMs: 60_000,
    httpListen: { host: '127.0.0.1', port: 0 },
    clock: opts.clock ?? systemClock,
    log,
  });
  return {
    running,
    socket,
    logs: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: () => running.stop(),
  };
}

export type Cleanups = Array<() => Promise<void> | void>;

export interface AgentWithCaOptions {
  readonly ttlMs?: number;
  /** Write a development token for default/web before the agent starts (default true). */
  readonly withToken?: boolean;
  /** --output-dir, relative to the scratch directory. */
  readonly outputDir?: string;
}

/**
 * A CA and an agent in-process, sharing a FakeClock that starts at the real time (the served
 * certificates are also checked by openssl and TLS), on a whole second as X.509 times are, so a
 * 10 s certificate lives exactly 10 s. What it starts is pushed onto `cleanups`.
 */
export async function agentWithCa(cleanups: Cleanups, opts: AgentWithCaOptions = {}): Promise<{ dir: string; keysDir: string; ca: TestCa; agent: TestAgent; clock: FakeClock }> {
  const scratch = scratchDir();
  cleanups.push(scratch.cleanup);
  const keysDir = join(scratch.path, 'keys');
  const clock = new FakeClock(Math.ceil(Date.now() / 1000) * 1000);
  const ca = await startCa(keysDir, undefined, clock);
  cleanups.push(() => ca.stop());
  if (opts.withToken !== false) await writeToken(keysDir, join(scratch.path, 'token'));
  const agent = await runTestAgent({
    caAddress: ca.server.grpcAddress,
    dir: scratch.path,
    rootCertPath: join(keysDir, 'root-cert.pem'),
    ttlMs: opts.ttlMs ?? 3_600_000,
    ...(opts.outputDir ? { outputDir: join(scratch.path, opts.outputDir) } : {}),
    clock,
  });
  cleanups.push(() => agent.stop());
  return { dir: scratch.path, keysDir, ca, agent, clock };
}

/** An Envoy-like SDS stream on the agent's socket, closed by `cleanups`. */
export function envoyStream(cleanups: Cleanups, agent: TestAgent, names = ['default', 'ROOTCA'], extra: { nackResponse?: number } = {}): EnvoyLikeStream {
  const client = sdsClient(`unix:${agent.socket}`);
  const stream = new EnvoyLikeStream(client, { names, ...extra });
  cleanups.push(() => {
    stream.close();
    client.close();
  });
  return stream;
}

/** Splits a PEM bundle into its blocks. */
export function spiffeIdOf(certPem: string): string | undefined {
  return /URI:(spiffe:\/\/\S+?)(?:,|$)/.exec(new X509Certificate(certPem).subjectAltName ?? '')?.[1];
}

/** True when the secret's private key is the key of its leaf certificate. */
export function keyMatchesLeaf(secret: DecodedSecret): boolean {
  const leaf = new X509Certificate(pemBlocks(secret.chainPem!)[0]!);
  return leaf.checkPrivateKey(createPrivateKey(secret.privateKeyPem!));
}

/** `openssl verify` of the served chain against the served bundle; returns openssl's output. */
/** `openssl verify` of a served chain (leaf then intermediates) against a served bundle. */
export function opensslVerifyServed(chainPem: string, bundlePem: string): string {
  const [leaf, ...intermediates] = pemBlocks(chainPem);
  return opensslVerify(bundlePem, intermediates.join(''), leaf!);
}

/**
 * An mTLS handshake where both ends use the served secrets (default as the identity, ROOTCA as
 * the trust) and each checks the other's SPIFFE ID, as Envoy's SAN matcher would.
 */
export async function mtlsHandshake(identity: DecodedSecret, bundlePem: string, expectedId: string): Promise<{ serverSawId: string | undefined; clientSawId: string | undefined }> {
  const server = tls.createServer({ key: identity.privateKeyPem, cert: identity.chainPem, ca: bundlePem, requestCert: true, rejectUnauthorized: true });
  let serverSawId: string | undefined;
  server.on('secureConnection', (s) => {
    const peer = s.getPeerX509Certificate();
    serverSawId = peer ? spiffeIdOf(peer.toString()) : undefined;
    s.end('hello');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  try {
    const clientSawId = await new Promise<string | undefined>((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        key: identity.privateKeyPem,
        cert: identity.chainPem,
        ca: bundlePem,
        // SPIFFE: the peer is checked by its URI SAN, not a DNS name.
        checkServerIdentity: (_host, cert) => (spiffeIdOf(cert.raw ? new X509Certificate(cert.raw).toString() : '') === expectedId ? undefined : new Error('peer SPIFFE ID mismatch')),
      });
      socket.once('secureConnect', () => {
        const peer = socket.getPeerX509Certificate();
        socket.once('data', () => {
          socket.end();
          resolve(peer ? spiffeIdOf(peer.toString()) : undefined);
        });
      });
      socket.once('error', reject);
    });
    return { serverSawId, clientSawId };
  } finally {
    server.close();
  }
}
