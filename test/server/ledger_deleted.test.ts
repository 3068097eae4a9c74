// Issue 12.3: deleting the SQLite ledger under a running CA stops issuance (UNAVAILABLE, /readyz
// 503) until the same file is back; a restart refuses to start an empty ledger for a CA whose
// ledger key has signed checkpoints, unless --new-ledger says so (recorded in its first record).

import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDevIssuer } from '../../src/authn/index.ts';
import { LEDGER_HEAD_FILE, openLedger } from '../../src/ledger/index.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { runMeshca, startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';

const dir = tempDir();
const keysDir = join(dir.path, 'keys');
const dbPath = join(dir.path, 'data', 'ledger.db');
afterAll(() => dir.cleanup());

async function issueWith(ca: TestCa): Promise<{ client: CaClient; issue: () => Promise<unknown> }> {
  const client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
  const dev = await loadDevIssuer(ca.keysDir, false);
  const token = await dev.mint({ namespace: 'a', serviceAccount: 'b', audience: 'meshca', ttlMs: 600_000, nowMs: Date.now() });
  return { client, issue: () => client.createCertificate({ csr: opensslCsr().csrPem, token }) };
}

const readyz = async (ca: TestCa) => {
  const res = await fetch(`http://${ca.server.httpAddress}/readyz`);
  return { status: res.status, text: await res.text() };
};

describe('the SQLite ledger deleted under a running CA', () => {
  it('refuses issuance and fails /readyz until the file is back; a restart refuses an empty ledger without --new-ledger', async () => {
    const ca = await startTestCa(['--db', `sqlite:${dbPath}`], { keysDir });
    const { client, issue } = await issueWith(ca);
    try {
      await issue();
      expect(existsSync(join(keysDir, LEDGER_HEAD_FILE))).toBe(true);

      // Moved away: /readyz sees it before any request does, and nothing is issued.
      renameSync(dbPath, `${dbPath}.moved`);
      const notReady = await readyz(ca);
      expect(notReady.status).toBe(503);
      // The failing check is named; its detail may be kept for the log (docs/security.md).
      expect(notReady.text).toMatch(/^ledger\b/m);
      await expect(issue()).rejects.toMatchObject({ code: status.UNAVAILABLE, details: expect.stringContaining('was deleted or moved away') });

      // The same file back: ready again, issuing again.
      renameSync(`${dbPath}.moved`, dbPath);
      expect((await readyz(ca)).status).toBe(200);
      await issue();

      // Deleted for good.
      rmSync(dbPath);
      await expect(issue()).rejects.toMatchObject({ code: status.UNAVAILABLE });
      expect((await readyz(ca)).status).toBe(503);
    } finally {
      client.close();
      await ca.server.close(2000);
    }
    for (const suffix of ['-wal', '-shm']) rmSync(`${dbPath}${suffix}`, { force: true });

    // Restarted through the real command: no fresh empty ledger for this CA.
    const refused = await runMeshca(['serve', '--keys', keysDir, '--db', `sqlite:${dbPath}`, '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/ledger sqlite:.* is empty, but this CA's ledger key has signed \d+ records of ledger .*ledger-head\.json.*--new-ledger/);
    expect(refused.stdout).not.toContain('meshca serve listening');

    // --new-ledger starts one on purpose, and its first record says so.
    const again = await startTestCa(['--db', `sqlite:${dbPath}`, '--new-ledger'], { keysDir });
    await again.server.close(2000);
    const ledger = await openLedger(`sqlite:${dbPath}`, { mustExist: true });
    const [first] = await ledger.query({ order: 'asc', limit: 1 });
    await ledger.close();
    expect(first!.seq).toBe(1);
    expect(first!.event).toMatchObject({ type: 'ca', event: 'ledger-bind', detail: { created: true, newLedger: true, replacesSeq: expect.any(Number) } });
  });
});
