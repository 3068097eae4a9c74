// SPIFFE federation between two meshca CAs in two trust domains, over real sockets: each serves its
// bundle endpoint over TLS with its own X509-SVID (https_spiffe) and federates with the other; a
// workload of each completes mutual TLS with a workload of the other; then one side rotates its
// root, the other picks the new bundle up by its refresh hint, and the handshake still works.

import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDevIssuer } from '../../src/authn/index.ts';
import { main } from '../../src/cli/main.ts';
import { fetchBundle, parseBundleDocument, parseFederationPeer } from '../../src/federation/index.ts';
import * as grpc from '@grpc/grpc-js';
import { CaClient } from '../helpers/ca_client.ts';
import { EnvoyLikeStream, sdsClient } from '../sds/envoy_client.ts';
import { runTestAgent } from '../agent/harness.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { freePort } from '../helpers/net.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';
import { FakeClock } from '../fakes/clock.ts';

// Two minutes behind real time: the test advances it ~90 s through refresh hints, and the
// handshakes below check validity against the real clock.
const clock = new FakeClock(Math.ceil(Date.now() / 1000) * 1000 - 120_000);
let work: { path: string; cleanup: () => void };
const cas: Record<'a' | 'b', TestCa | undefined> = { a: undefined, b: undefined };
const ports = { a: 0, b: 0 };

async function cli(args: string[]) {
  let stderr = '';
  const code = await main(args, { env: {}, stdout: () => undefined, stderr: (t) => (stderr += t), clock });
  if (code !== 0) throw new Error(`meshca ${args.join(' ')}: ${stderr}`);
}

interface Workload {
  readonly id: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** The roots the CA told it to trust: its own and, with --federated-in-rootca, the peer's. */
  readonly bundlePem: string;
}

async function workload(side: 'a' | 'b', sa: string): Promise<Workload> {
  const ca = cas[side]!;
  // The CA's serving certificate moves to the new root on rotation: trust its whole bundle.
  const client = new CaClient({ address: ca.server.grpcAddress, rootPem: readFileSync(join(ca.keysDir, 'root-cert.pem'), 'utf8'), serverName: 'localhost' });
  try {
    const dev = await loadDevIssuer(ca.keysDir, false);
    const token = await dev.mint({ namespace: 'shop', serviceAccount: sa, audience: 'meshca', ttlMs: 3_600_000, nowMs: clock.now() });
    const csr = opensslCsr();
    const { certChain } = await client.createCertificate({ csr: csr.csrPem, token });
    const roots = certChain.filter((p) => new X509Certificate(p).checkIssued(new X509Certificate(p)));
    const chain = certChain.filter((p) => !roots.includes(p));
    return { id: `spiffe://${side}.example/ns/shop/sa/${sa}`, certPem: chain.join(''), keyPem: csr.keyPem, bundlePem: roots.join('') };
  } finally {
    client.close();
  }
}

/** Mutual TLS between two workloads, each verifying the other against its own bundle; returns the IDs each side saw. */
async function handshake(server: Workload, client: Workload): Promise<{ serverSaw: string; clientSaw: string }> {
  const uriOf = (s: TLSSocket) => (s.getPeerCertificate().subjectaltname ?? '').replace(/^URI:/, '');
  const tlsServer = createServer({ cert: server.certPem, key: server.keyPem, ca: server.bundlePem, requestCert: true, rejectUnauthorized: true });
  let serverSaw = '';
  tlsServer.on('secureConnection', (s) => {
    serverSaw = uriOf(s);
    s.end();
  });
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (tlsServer.address() as { port: number }).port;
    const clientSaw = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, cert: client.certPem, key: client.keyPem, ca: client.bundlePem, checkServerIdentity: () => undefined }, () => {
        const seen = uriOf(s);
        s.end();
        resolve(seen);
      });
      s.on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 50));
    return { serverSaw, clientSaw };
  } finally {
    await new Promise((r) => tlsServer.close(r));
  }
}

async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('federation parsing', () => {
  it('reads https_spiffe and https_web peers and refuses the rest', () => {
    expect(parseFederationPeer('b.example=https://b:8443/bundle')).toMatchObject({ profile: 'https_spiffe', endpointId: 'spiffe://b.example/ns/meshca-system/sa/meshca' });
    expect(parseFederationPeer('b.example=https://b:8443#spiffe://b.example/bundle')).toMatchObject({ endpointId: 'spiffe://b.example/bundle' });
    expect(parseFederationPeer('b.example=https_web+https://b.example/bundle')).toMatchObject({ profile: 'https_web' });
    expect(() => parseFederationPeer('b.example=http://b/bundle')).toThrow(/must be an https:\/\/ URL/);
    expect(() => parseFederationPeer('https://b/bundle')).toThrow(/trust-domain/);
    expect(() => parseBundleDocument('{"keys":[]}', 'b.example', 0)).toThrow(/no x509-svid keys/);
  });
});

describe('two meshca CAs federated over https_spiffe', () => {
  beforeAll(async () => {
    work = tempDir();
    const keys = { a: join(work.path, 'a'), b: join(work.path, 'b') };
    await cli(['ca', 'init', '--keys', keys.a, '--trust-domain', 'a.example']);
    await cli(['ca', 'init', '--keys', keys.b, '--trust-domain', 'b.example']);
    ports.a = await freePort();
    ports.b = await freePort();
    // The first time, each trusts the other's root as handed over out of band.
    for (const side of ['a', 'b'] as const) {
      const peer = side === 'a' ? 'b' : 'a';
      const flags = [
        '--bundle-endpoint', `127.0.0.1:${ports[side]}`,
        '--federate-with', `${peer}.example=https://127.0.0.1:${ports[peer]}/bundle`,
        '--federate-bundle', `${peer}.example=${join(keys[peer], 'root-cert.pem')}`,
        '--federated-in-rootca',
        '--sds',
      ];
      cas[side] = await startTestCa(flags, { clock, keysDir: keys[side] });
    }
  });
  afterAll(async () => {
    await cas.a?.stop();
    await cas.b?.stop();
    work?.cleanup();
  });

  it('serves each bundle over TLS with spiffe_sequence and spiffe_refresh_hint, and workloads of both domains complete mutual TLS', async () => {
    // a started before b's endpoint listened: its first fetch failed and is retried on the clock.
    const { existsSync } = await import('node:fs');
    const fetched = () => existsSync(join(cas.a!.keysDir, 'federation', 'b.example.json')) && existsSync(join(cas.b!.keysDir, 'federation', 'a.example.json'));
    await until('both to have fetched the other\'s bundle', async () => {
      if (fetched()) return true;
      await clock.advance(30_000);
      return fetched();
    }).catch((err: unknown) => {
      console.log(cas.a!.logs.filter((l) => /federat|bundle endpoint/.test(String(l.msg))), cas.b!.logs.filter((l) => /federat|bundle endpoint/.test(String(l.msg))));
      throw err;
    });
    const a = await workload('a', 'web');
    const b = await workload('b', 'api');
    expect(a.bundlePem).toContain(cas.b!.rootPem.trim());
    expect(b.bundlePem).toContain(cas.a!.rootPem.trim());
    expect(await handshake(a, b)).toEqual({ serverSaw: b.id, clientSaw: a.id });
    expect(await handshake(b, a)).toEqual({ serverSaw: a.id, clientSaw: b.id });
    // The last good copy is in each key store.
    const stored = JSON.parse(readFileSync(join(cas.a!.keysDir, 'federation', 'b.example.json'), 'utf8')) as { refreshHintSeconds: number; rootsPem: string[] };
    expect(stored.refreshHintSeconds).toBeGreaterThan(0);
    expect(stored.rootsPem.join('')).toContain(cas.b!.rootPem.trim());
    // CA-direct SDS serves the peer's bundle as federated/<td>, and in ROOTCA with --federated-in-rootca.
    const md = new grpc.Metadata();
    const dev = await loadDevIssuer(cas.a!.keysDir, false);
    md.set('authorization', `Bearer ${await dev.mint({ namespace: 'edge', serviceAccount: 'gw', audience: 'meshca', ttlMs: 3_600_000, nowMs: clock.now() })}`);
    const sds = sdsClient(cas.a!.server.grpcAddress, grpc.credentials.createSsl(Buffer.from(cas.a!.rootPem)));
    const stream = new EnvoyLikeStream(sds, { names: ['ROOTCA', 'federated/b.example'], metadata: md });
    try {
      const r = await stream.responses.waitForSecret('federated/b.example');
      expect(r.secrets.get('federated/b.example')!.bundlePem).toBe(cas.b!.rootPem);
      expect(r.secrets.get('ROOTCA')!.bundlePem).toContain(cas.b!.rootPem.trim());
      expect(r.secrets.get('ROOTCA')!.bundlePem).toContain(cas.a!.rootPem.trim());
    } finally {
      stream.close();
      sds.close();
    }
    // meshca agent serves the peer's roots as federated/b.example too (and in ROOTCA, as a's CA sends them).
    const agentDir = join(work.path, 'agent-a');
    mkdirSync(agentDir, { recursive: true });
    writeFileSync(join(agentDir, 'token'), await dev.mint({ namespace: 'shop', serviceAccount: 'agent', audience: 'meshca', ttlMs: 3_600_000, nowMs: clock.now() }));
    // The agent keeps real time: its calls' deadlines are on its clock, and this test's runs behind.
    const agent = await runTestAgent({ caAddress: cas.a!.server.grpcAddress, dir: agentDir, rootCertPath: join(cas.a!.keysDir, 'root-cert.pem'), ttlMs: 3_600_000 });
    try {
      await agent.running.agent.firstCertificate();
      expect(agent.running.store.get('federated/b.example')).toMatchObject({ kind: 'trusted-ca', bundlePem: cas.b!.rootPem });
      expect(agent.running.store.get('ROOTCA')).toMatchObject({ bundlePem: cas.a!.rootPem + cas.b!.rootPem });
      expect(agent.running.store.get('federated/a.example')).toBeUndefined();
    } finally {
      await agent.stop();
    }
    // https_spiffe authenticates the endpoint by its SPIFFE ID, not by its name or address.
    const url = `https://127.0.0.1:${ports.b}/bundle`;
    const doc = parseBundleDocument(await fetchBundle(parseFederationPeer(`b.example=${url}`), [cas.b!.rootPem]), 'b.example', 0);
    expect(doc.refreshHintSeconds).toBe(60);
    await expect(fetchBundle(parseFederationPeer(`b.example=${url}#spiffe://b.example/someone-else`), [cas.b!.rootPem])).rejects.toThrow(/not spiffe:\/\/b.example\/someone-else/);
    await expect(fetchBundle(parseFederationPeer(`b.example=${url}`), [cas.a!.rootPem])).rejects.toThrow(/certificate/);
  });

  it('keeps working when b rotates its root: a follows b\'s bundle by its refresh hint', async () => {
    const a = await workload('a', 'web');
    await cli(['root', 'prepare', '--keys', cas.b!.keysDir, '--db', 'memory:']);
    await cli(['root', 'activate', '--keys', cas.b!.keysDir, '--force', '--db', 'memory:']);
    // b's serve follows its key store (1 s); a re-fetches b's bundle at its refresh hint (60 s).
    await clock.advance(1_000);
    await clock.advance(50_000);
    const bRoots = readFileSync(join(cas.b!.keysDir, 'root-cert.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!;
    const newRoot = bRoots.find((p) => p.trim() !== cas.b!.rootPem.trim())!;
    expect(newRoot).toBeDefined();
    const aCopy = () => JSON.parse(readFileSync(join(cas.a!.keysDir, 'federation', 'b.example.json'), 'utf8')) as { rootsPem: string[]; sequence: number };
    const before = aCopy().sequence;
    await until("a's copy of b's bundle to hold b's new root", async () => {
      if (aCopy().rootsPem.includes(newRoot)) return true;
      await clock.advance(5_000);
      return false;
    });
    expect(aCopy().sequence).toBeGreaterThan(before);
    const b2 = await workload('b', 'api');
    const aNow = await workload('a', 'web');
    // b's new leaf chains to its new root, which a's workloads trust from their next certificate on
    // (the agent's renewal brings the new ROOTCA); b still trusts a's certificate from before.
    expect(await handshake(aNow, b2)).toEqual({ serverSaw: b2.id, clientSaw: aNow.id });
    expect(await handshake(b2, aNow)).toEqual({ serverSaw: aNow.id, clientSaw: b2.id });
    expect(await handshake(b2, { ...a, bundlePem: aNow.bundlePem })).toEqual({ serverSaw: a.id, clientSaw: b2.id });
  });
});
