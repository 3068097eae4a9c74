// `meshca audit …` and `meshca root …` against a running CA (issue 17, item 13): over its audit
// and admin gRPC APIs with --server, as an --auditors identity with a token and an --admins
// identity over mutual TLS; no database and no key directory on the client's side. Paging past
// 10,000 records follows the seq cursor.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { LedgerEvent } from '../../src/ledger/index.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';

const AUDITOR = 'spiffe://cluster.local/ns/security/sa/auditor';
const ADMIN = 'spiffe://cluster.local/ns/ops/sa/admin';

let ca: TestCa;
let work: { path: string; cleanup: () => void };
let root: string;
/** What every remote call passes: the CA and the root that signed its serving certificate. */
let server: string[];
let auditorToken: string;
let strangerToken: string;
/** The admin's mutual TLS identity, a certificate got from the CA with `meshca request`. */
let adminTls: string[];

async function cli(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { env: {}, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

async function mintTo(ns: string, sa: string): Promise<string> {
  const r = await cli(['token', 'mint', '--keys', ca.keysDir, '--ns', ns, '--sa', sa]);
  expect(r.code).toBe(0);
  const file = join(work.path, `${ns}-${sa}.token`);
  writeFileSync(file, r.stdout.trim());
  return file;
}

beforeAll(async () => {
  work = tempDir();
  ca = await startTestCa(['--db', `sqlite:${join(work.path, 'ledger.db')}`, '--auditors', AUDITOR, '--admins', ADMIN]);
  root = join(ca.keysDir, 'root-cert.pem');
  server = ['--server', ca.server.grpcAddress, '--root-cert', root];
  auditorToken = await mintTo('security', 'auditor');
  strangerToken = await mintTo('default', 'web');
  const adminToken = await mintTo('ops', 'admin');
  const csr = opensslCsr();
  writeFileSync(join(work.path, 'admin.csr'), csr.csrPem);
  writeFileSync(join(work.path, 'admin-key.pem'), csr.keyPem);
  const got = await cli(['request', '--ca-addr', ca.server.grpcAddress, '--root-cert', root, '--token-file', adminToken, '--csr', join(work.path, 'admin.csr')]);
  expect(got.code).toBe(0);
  writeFileSync(join(work.path, 'admin-chain.pem'), got.stdout);
  adminTls = ['--cert', join(work.path, 'admin-chain.pem'), '--key', join(work.path, 'admin-key.pem')];
});
afterAll(async () => {
  await ca?.stop();
  work?.cleanup();
});

describe('meshca audit --server', () => {
  it('an auditor with a token queries the ledger of a running CA', async () => {
    const r = await cli(['audit', 'query', ...server, '--token-file', auditorToken, '--id', ADMIN, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const records = JSON.parse(r.stdout) as { event: LedgerEvent }[];
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((x) => x.event.type === 'issuance' && x.event.spiffeId === ADMIN)).toBe(true);
    const table = await cli(['audit', 'query', ...server, '--token-file', auditorToken, '--id', ADMIN]);
    expect(table.stdout).toMatch(/^SEQ +TIME +TYPE +DECISION +SUBJECT/);
  });

  it('refuses who is not an auditor, with the reason, and says what is missing without --root-cert', async () => {
    const r = await cli(['audit', 'query', ...server, '--token-file', strangerToken]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`meshca audit query: the CA at ${ca.server.grpcAddress} answered PERMISSION_DENIED: spiffe://cluster.local/ns/default/sa/web is not an auditor (--auditors)\n`);
    const noRoot = await cli(['audit', 'verify', '--server', ca.server.grpcAddress, '--token-file', auditorToken]);
    expect(noRoot.code).toBe(2);
    expect(noRoot.stderr).toMatch(/^meshca audit verify: --root-cert is required with --server/);
  });

  it('says the CA could not be verified, not that it is unavailable, when --root-cert or the name is wrong', async () => {
    const other = tempDir();
    try {
      expect((await cli(['ca', 'init', '--keys', other.path])).code).toBe(0);
      const wrongRoot = await cli(['audit', 'query', '--server', ca.server.grpcAddress, '--root-cert', join(other.path, 'root-cert.pem'), '--token-file', auditorToken]);
      expect(wrongRoot.code).toBe(1);
      expect(wrongRoot.stderr).toMatch(new RegExp(`^meshca audit query: the CA at ${ca.server.grpcAddress.replace(/\./g, '\\.')} could not be verified: .*; check that --root-cert holds the CA's root`));
      const wrongName = await cli(['root', 'status', ...server, ...adminTls, '--ca-name', 'someone-else.example']);
      expect(wrongName.code).toBe(1);
      expect(wrongName.stderr).toMatch(/could not be verified: .*someone-else\.example.*--ca-name \(default: the host of --server\)/);
    } finally {
      other.cleanup();
    }
  });

  it('verify asks the CA to check its chain and checkpoints', async () => {
    const r = await cli(['audit', 'verify', ...server, '--token-file', auditorToken]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^ledger at ${ca.server.grpcAddress.replace(/\./g, '\\.')} verifies: \\d+ records`));
  });

  it('pages past 10,000 records with the seq cursor, in export and in query --limit', async () => {
    const ledger = ca.server.context.fullLedger!;
    const base = Date.now();
    for (let batch = 0; batch < 21; batch++) {
      await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          ledger.append({ type: 'issuance', timeMs: base + batch * 500 + i, decision: 'denied', reason: 'paging test', channel: 'CreateCertificate', namespace: 'bulk' }),
        ),
      );
    }
    const exported = await cli(['audit', 'export', ...server, '--token-file', auditorToken, '--ns', 'bulk']);
    expect(exported.code).toBe(0);
    const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number });
    expect(lines).toHaveLength(10_500);
    expect(lines.every((l, i) => i === 0 || l.seq > lines[i - 1]!.seq)).toBe(true);
    expect(exported.stderr).toBe('exported 10500 records\n');

    const queried = await cli(['audit', 'query', ...server, '--token-file', auditorToken, '--ns', 'bulk', '--limit', '10200', '--json']);
    expect(queried.code).toBe(0);
    const seqs = (JSON.parse(queried.stdout) as { seq: number }[]).map((r) => r.seq);
    expect(seqs).toHaveLength(10_200);
    expect(new Set(seqs).size).toBe(10_200);
    expect(seqs.every((s, i) => i === 0 || s < seqs[i - 1]!)).toBe(true);
    expect(seqs[0]).toBe(lines.at(-1)!.seq);
  }, 120_000);
});

describe('meshca root --server', () => {
  it('an admin over mutual TLS reads the status and prepares a root, recorded under the admin', async () => {
    const status = await cli(['root', 'status', ...server, ...adminTls, '--json']);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ nextStep: { step: 'prepare' } });
    expect((await cli(['root', 'status', ...server, ...adminTls])).stdout).toMatch(/active/);

    const prepared = await cli(['root', 'prepare', ...server, ...adminTls]);
    expect(prepared.stderr).toBe('');
    expect(prepared.code).toBe(0);
    expect(prepared.stdout).toMatch(/^prepared root [0-9a-f]{16}… with its intermediate; it is in the trust bundle now and signs nothing yet/);
    const records = JSON.parse((await cli(['audit', 'query', ...server, '--token-file', auditorToken, '--json', '--limit', '50'])).stdout) as { event: LedgerEvent }[];
    expect(records.some((r) => r.event.type === 'ca' && r.event.actor === ADMIN)).toBe(true);

    const early = await cli(['root', 'activate', ...server, ...adminTls]);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(new RegExp(`^meshca root activate: the CA at ${ca.server.grpcAddress.replace(/\./g, '\\.')} answered FAILED_PRECONDITION: .*refused`));
  });

  it('refuses who is not an admin, and an own root over the network', async () => {
    const r = await cli(['root', 'prepare', ...server, '--token-file', auditorToken]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/answered PERMISSION_DENIED: spiffe:\/\/cluster\.local\/ns\/security\/sa\/auditor is not an admin \(--admins\)/);
    const own = await cli(['root', 'prepare', ...server, ...adminTls, '--external-root-cert', root, '--external-root-key', root]);
    expect(own.code).toBe(2);
    expect(own.stderr).toMatch(/--external-root-cert cannot go with --server: the admin API never takes a root key/);
  });
});
