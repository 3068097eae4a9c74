// Fail closed: when the ledger cannot record, CreateCertificate answers UNAVAILABLE with no
// certificate, /readyz says why, and both recover once the ledger can write again.

import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDevIssuer } from '../../src/authn/index.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';

const dir = tempDir();
const dbPath = join(dir.path, 'ledger.db');
let ca: TestCa;
let client: CaClient;

beforeAll(async () => {
  ca = await startTestCa(['--db', `sqlite:${dbPath}`]);
  client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
});
afterAll(async () => {
  client?.close();
  await ca?.stop();
  dir.cleanup();
});

describe('serve with a ledger that cannot write', () => {
  it('refuses with UNAVAILABLE, fails /readyz, and recovers', async () => {
    const dev = await loadDevIssuer(ca.keysDir, false);
    const token = await dev.mint({ namespace: 'a', serviceAccount: 'b', audience: 'meshca', ttlMs: 600_000, nowMs: Date.now() });
    await client.createCertificate({ csr: opensslCsr().csrPem, token });

    const db = new DatabaseSync(dbPath);
    db.exec('ALTER TABLE meshca_ledger_records RENAME TO meshca_ledger_records_gone');
    try {
      await expect(client.createCertificate({ csr: opensslCsr().csrPem, token })).rejects.toMatchObject({ code: status.UNAVAILABLE });
      const ready = await fetch(`http://${ca.server.httpAddress}/readyz`);
      expect(ready.status).toBe(503);
      // The unauthenticated answer names the check; why it fails (a database error) is only in the log.
      expect(await ready.text()).toBe('not ready\nledger\n');
      expect(ca.logs.some((l) => l.msg === 'not ready: ledger' && /the ledger cannot record/.test(JSON.stringify(l.failing)))).toBe(true);
    } finally {
      db.exec('ALTER TABLE meshca_ledger_records_gone RENAME TO meshca_ledger_records');
      db.close();
    }
    await client.createCertificate({ csr: opensslCsr().csrPem, token });
    expect((await fetch(`http://${ca.server.httpAddress}/readyz`)).status).toBe(200);
  });
});
