// The runtime deny list end to end: `meshca deny` on the key store (the real command, in-process)
// and through the admin API, against a running `meshca serve --sds` on a fake clock. A denied
// identity is refused on issuance and on mTLS renewal, its CA-direct SDS stream is closed, and
// every change and refusal is in the ledger with the admin who made it.

import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { denyListServiceClient } from '../../src/admin/index.ts';
import { compileDenyList, loadDevIssuer, parseDenyTarget, type Caller } from '../../src/authn/index.ts';
import { main } from '../../src/cli/main.ts';
import { openLedger, type LedgerEvent } from '../../src/ledger/index.ts';
import { kubernetesSpiffeId, parseSpiffeId } from '../../src/spiffe/index.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';
import { FakeClock } from '../fakes/clock.ts';
import { EnvoyLikeStream, sdsClient } from '../sds/envoy_client.ts';

const ADMIN = 'spiffe://cluster.local/ns/ops/sa/security';

let work: { path: string; cleanup: () => void };
let ca: TestCa;
let clock: FakeClock;
let client: CaClient;
let mint: (ns: string, sa: string) => Promise<string>;

async function cli(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { env: {}, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), clock });
  return { code, stdout, stderr };
}

function serverLedger(): LedgerEvent[] {
  return (ca.server.context.ledger as unknown as { events: LedgerEvent[] }).events;
}

beforeAll(async () => {
  work = tempDir();
  clock = new FakeClock(Math.ceil(Date.now() / 1000) * 1000);
  ca = await startTestCa(['--sds', '--admins', ADMIN, '--deny-namespaces', 'quarantine'], { clock, keysDir: join(work.path, 'keys') });
  client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
  const dev = await loadDevIssuer(ca.keysDir, false);
  mint = (ns, sa) => dev.mint({ namespace: ns, serviceAccount: sa, audience: 'meshca', ttlMs: 3_600_000, nowMs: clock.now() });
});

afterAll(async () => {
  client?.close();
  await ca?.stop();
  work?.cleanup();
});

describe('deny targets', () => {
  const caller = (ns: string, sa: string): Caller => ({ spiffeId: kubernetesSpiffeId('cluster.local', ns, sa), authenticator: 'test' });
  const entry = (target: string, untilMs?: number) => ({ target, reason: 'r', addedBy: 'cli:test', addedAtMs: 0, ...(untilMs ? { untilMs } : {}) });

  it('matches an ID, a namespace or one service account, and stops matching after --until', () => {
    const check = compileDenyList([entry('spiffe://cluster.local/ns/a/sa/x'), entry('ns/b'), entry('ns/c/sa/y', 1000)]);
    expect(check(caller('a', 'x'), 0)?.target).toBe('spiffe://cluster.local/ns/a/sa/x');
    expect(check(caller('a', 'y'), 0)).toBeUndefined();
    expect(check(caller('b', 'anything'), 0)?.target).toBe('ns/b');
    expect(check(caller('c', 'y'), 999)?.target).toBe('ns/c/sa/y');
    expect(check(caller('c', 'y'), 1000)).toBeUndefined();
    expect(check(caller('c', 'z'), 0)).toBeUndefined();
    expect(check({ spiffeId: parseSpiffeId('spiffe://other.org/ns/b/sa/x'), authenticator: 'mtls' }, 0)?.target).toBe('ns/b');
  });

  it('refuses targets that are none of the three forms', () => {
    for (const bad of ['default', 'ns/', 'ns/Bad_Name', 'ns/a/sa', 'ns/a/sa/b/c', 'spiffe://', 'namespace/a']) {
      expect(() => parseDenyTarget(bad), bad).toThrow(/must be a SPIFFE ID|not a valid SPIFFE ID/);
    }
  });
});

describe('meshca deny against a running serve', () => {
  it('refuses issuance and mTLS renewal within one key-store poll after "deny add", and again serves after "deny remove"', async () => {
    const before = opensslCsr();
    const { certChain } = await client.createCertificate({ csr: before.csrPem, token: await mint('shop', 'web') });
    const db = `sqlite:${join(work.path, 'cli-ledger.db')}`;
    const added = await cli(['deny', 'add', 'ns/shop/sa/web', '--reason', 'compromised pod, INC-42', '--until', '2h', '--keys', ca.keysDir, '--db', db]);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/added ns\/shop\/sa\/web on the deny list until/);
    // The serve follows its key store on the poll (1 s).
    await clock.advance(1_000);
    await expect(client.createCertificate({ csr: opensslCsr().csrPem, token: await mint('shop', 'web') })).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: expect.stringMatching(/runtime deny list \(ns\/shop\/sa\/web, added by cli:.*compromised pod, INC-42\)/),
    });
    // Another service account of the namespace is not touched.
    await client.createCertificate({ csr: opensslCsr().csrPem, token: await mint('shop', 'cart') });
    // Renewal with the certificate issued before the denial is refused too.
    const mtls = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost', clientCert: { certPem: certChain[0]! + certChain[1]!, keyPem: before.keyPem } });
    try {
      await expect(mtls.createCertificate({ csr: opensslCsr().csrPem })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    } finally {
      mtls.close();
    }
    const refusals = serverLedger().filter((e) => e.type === 'issuance' && e.decision === 'denied' && e.spiffeId === 'spiffe://cluster.local/ns/shop/sa/web');
    expect(refusals.length).toBe(2);
    expect(refusals.map((r) => r.type === 'issuance' && r.authenticator)).toEqual(['dev-jwt', 'mtls']);
    expect(refusals.every((r) => r.type === 'issuance' && r.errorCode === 'PERMISSION_DENIED' && /added by cli:/.test(r.reason))).toBe(true);

    const listed = await cli(['deny', 'list', '--keys', ca.keysDir, '--deny-namespaces', 'quarantine', '--json']);
    const rows = JSON.parse(listed.stdout) as Array<{ target: string; source: string }>;
    expect(rows.map((r) => [r.target, r.source])).toEqual([['ns/quarantine', 'static'], ['ns/shop/sa/web', 'runtime']]);

    const removed = await cli(['deny', 'remove', 'ns/shop/sa/web', '--keys', ca.keysDir, '--db', db]);
    expect(removed.stdout).toMatch(/removed ns\/shop\/sa\/web/);
    await clock.advance(1_000);
    await client.createCertificate({ csr: opensslCsr().csrPem, token: await mint('shop', 'web') });

    // Both changes are in the ledger the command wrote, with who made them.
    const ledger = await openLedger(db, { mustExist: true });
    try {
      // (The ledger's first record binds it to the CA: not a deny change.)
      const events = (await ledger.query({ type: 'ca', limit: 10 })).map((r) => r.event).filter((e) => e.type === 'ca' && e.event !== 'ledger-bind');
      expect(events.map((e) => e.type === 'ca' && [e.event, e.detail.target])).toEqual([['deny-remove', 'ns/shop/sa/web'], ['deny-add', 'ns/shop/sa/web']]);
      expect(events.every((e) => e.type === 'ca' && e.actor.startsWith('cli:'))).toBe(true);
    } finally {
      await ledger.close();
    }
  });

  it('stops applying an entry once its --until has passed', async () => {
    const r = await cli(['deny', 'add', 'spiffe://cluster.local/ns/shop/sa/timed', '--reason', 'maintenance', '--until', '10m', '--keys', ca.keysDir, '--db', 'memory:']);
    expect(r.code).toBe(0);
    await clock.advance(1_000);
    await expect(client.createCertificate({ csr: opensslCsr().csrPem, token: await mint('shop', 'timed') })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    await clock.advance(10 * 60_000);
    await client.createCertificate({ csr: opensslCsr().csrPem, token: await mint('shop', 'timed') });
  });

  it('closes the CA-direct SDS stream of an identity denied after it opened, and records the refusal', async () => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${await mint('edge', 'gateway')}`);
    const sds = sdsClient(ca.server.grpcAddress, grpc.credentials.createSsl(Buffer.from(ca.rootPem)));
    const stream = new EnvoyLikeStream(sds, { names: ['default', 'ROOTCA'], metadata: md });
    try {
      await stream.responses.waitForSecret('default');
      const r = await cli(['deny', 'add', 'ns/edge', '--reason', 'edge gateways suspended', '--keys', ca.keysDir, '--db', 'memory:']);
      expect(r.code).toBe(0);
      await clock.advance(1_000);
      const err = await stream.responses.waitForError();
      expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(err.details).toMatch(/ns\/edge, added by cli:.*edge gateways suspended/);
      const refusal = serverLedger().find((e) => e.type === 'issuance' && e.channel === 'SDS' && e.decision === 'denied');
      expect(refusal).toMatchObject({ spiffeId: 'spiffe://cluster.local/ns/edge/sa/gateway', errorCode: 'PERMISSION_DENIED' });
    } finally {
      stream.close();
      sds.close();
      await cli(['deny', 'remove', 'ns/edge', '--keys', ca.keysDir, '--db', 'memory:']);
    }
  });

  it('through the admin API: admins only, each change in the serve ledger with the admin, static entries listed as static', async () => {
    const Ctor = denyListServiceClient();
    const admin = new Ctor(ca.server.grpcAddress, grpc.credentials.createSsl(Buffer.from(ca.rootPem)), { 'grpc.ssl_target_name_override': 'localhost' }) as grpc.Client & Record<string, Function>;
    const call = <T>(method: string, req: object, token: string) =>
      new Promise<T>((resolve, reject) => {
        const md = new grpc.Metadata();
        md.set('authorization', `Bearer ${token}`);
        admin[method]!(req, md, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
      });
    try {
      await expect(call('Add', { target: 'ns/pay', reason: 'x' }, await mint('pay', 'api'))).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: expect.stringMatching(/not an admin/) });
      const adminToken = await mint('ops', 'security');
      await expect(call('Add', { target: 'pay', reason: 'x' }, adminToken)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
      await expect(call('Add', { target: 'ns/pay', reason: ' ' }, adminToken)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/needs --reason/) });
      expect(await call('Add', { target: 'ns/pay', reason: 'PCI audit' }, adminToken)).toMatchObject({ outcome: 'added', target: 'ns/pay' });
      // The admin API applies the change on this serve at once.
      await expect(client.createCertificate({ csr: opensslCsr().csrPem, token: await mint('pay', 'api') })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
      const list = await call<{ entries: Array<{ target: string; source: string; added_by: string }> }>('List', {}, adminToken);
      expect(list.entries.map((e) => [e.target, e.source, e.added_by])).toEqual([['ns/quarantine', 'static', ''], ['ns/pay', 'runtime', ADMIN]]);
      expect(await call('Remove', { target: 'ns/pay' }, adminToken)).toMatchObject({ outcome: 'removed' });
      await client.createCertificate({ csr: opensslCsr().csrPem, token: await mint('pay', 'api') });
      // The command with --server goes through the same API with the admin's token.
      const tokenFile = join(work.path, 'admin-token');
      writeFileSync(tokenFile, adminToken);
      const remote = ['--server', ca.server.grpcAddress, '--token-file', tokenFile, '--root-cert', join(ca.keysDir, 'root-cert.pem')];
      const viaCli = await cli(['deny', 'add', 'ns/lab', '--reason', 'lab closed', ...remote]);
      expect(viaCli.stderr).toBe('');
      expect(viaCli.stdout).toMatch(/added ns\/lab on the deny list until removed/);
      expect((await cli(['deny', 'list', ...remote])).stdout).toMatch(/ns\/lab\truntime by spiffe:\/\/cluster.local\/ns\/ops\/sa\/security/);
      expect((await cli(['deny', 'remove', 'ns/lab', ...remote])).stdout).toMatch(/removed ns\/lab/);
      const changes = serverLedger().filter((e) => e.type === 'ca' && e.event.startsWith('deny-'));
      expect(changes.map((e) => e.type === 'ca' && [e.event, e.actor, e.detail.target])).toEqual([
        ['deny-add', ADMIN, 'ns/pay'], ['deny-remove', ADMIN, 'ns/pay'], ['deny-add', ADMIN, 'ns/lab'], ['deny-remove', ADMIN, 'ns/lab'],
      ]);
    } finally {
      admin.close();
    }
  });

  it('refuses a bad target or a missing reason with a one-line reason and writes nothing', async () => {
    const bad = await cli(['deny', 'add', 'shop', '--reason', 'x', '--keys', ca.keysDir, '--db', 'memory:']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/must be a SPIFFE ID, ns\/<namespace> or ns\/<namespace>\/sa\/<service-account>/);
    const noReason = await cli(['deny', 'add', 'ns/shop', '--keys', ca.keysDir, '--db', 'memory:']);
    expect(noReason.code).not.toBe(0);
    expect(noReason.stderr).toMatch(/reason/);
    const past = await cli(['deny', 'add', 'ns/shop', '--reason', 'x', '--until', '2001-01-01T00:00:00Z', '--keys', ca.keysDir, '--db', 'memory:']);
    expect(past.stderr).toMatch(/not in the future/);
    const listed = await cli(['deny', 'list', '--keys', ca.keysDir, '--json']);
    expect((JSON.parse(listed.stdout) as unknown[]).filter((r) => (r as { inForce: boolean }).inForce)).toEqual([]);
    expect(new X509Certificate(ca.rootPem).ca).toBe(true);
  });
});
