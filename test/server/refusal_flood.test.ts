// Issue 12.7: an anonymous flood cannot fill the ledger. Through the real gRPC server: 600
// CreateCertificate calls with no or a forged token add no record each; on the (fake) clock's next
// interval they become one counted `refusals` record per peer and reason, whose counts add up.
// Authenticated denials stay one record each.

import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadDevIssuer } from '../../src/authn/index.ts';
import { DEFAULT_REFUSAL_INTERVAL_MS, openLedger, type Ledger, type RefusalsEvent } from '../../src/ledger/index.ts';
import { FakeClock } from '../fakes/clock.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';

const dir = tempDir();
const db = `sqlite:${join(dir.path, 'ledger.db')}`;
let clock: FakeClock;
let ca: TestCa;
let client: CaClient;
let reader: Ledger;

beforeAll(async () => {
  clock = new FakeClock(Math.ceil(Date.now() / 1000) * 1000);
  ca = await startTestCa(['--db', db, '--deny-namespaces', 'quarantine'], { clock, keysDir: join(dir.path, 'keys') });
  client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
  reader = await openLedger(db, { mustExist: true });
});
afterAll(async () => {
  client?.close();
  await reader?.close();
  await ca?.server.close(2000);
  dir.cleanup();
});

const recordCount = async () => (await reader.query({ order: 'desc', limit: 1 }))[0]?.seq ?? 0;

describe('an anonymous flood', () => {
  it('is counted, not recorded per request: ledger growth stays bounded and the counts add up', async () => {
    const csr = opensslCsr().csrPem;
    const before = await recordCount();
    const flood = async (n: number, token?: string) => {
      const results = await Promise.allSettled(Array.from({ length: n }, () => client.createCertificate({ csr, ...(token ? { token } : {}) })));
      for (const r of results) expect(r).toMatchObject({ status: 'rejected', reason: { code: status.UNAUTHENTICATED } });
    };
    for (let i = 0; i < 5; i++) await flood(100);
    await flood(100, 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.forged');
    expect(await recordCount()).toBe(before);

    // Authenticated but denied by policy: one record each, as before.
    const dev = await loadDevIssuer(ca.keysDir, false);
    const token = await dev.mint({ namespace: 'quarantine', serviceAccount: 'x', audience: 'meshca', ttlMs: 600_000, nowMs: clock.now() });
    for (let i = 0; i < 3; i++) await expect(client.createCertificate({ csr, token })).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    expect(await recordCount()).toBe(before + 3);

    await clock.advance(DEFAULT_REFUSAL_INTERVAL_MS);
    const refusals = await vi.waitFor(async () => {
      const found = (await reader.query({ type: 'refusals', limit: 100 })).map((r) => r.event as RefusalsEvent);
      expect(found.length).toBeGreaterThan(0);
      return found;
    }, { timeout: 10_000 });
    // One record per (channel, peer host, code): all from 127.0.0.1, all UNAUTHENTICATED.
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ channel: 'CreateCertificate', peer: '127.0.0.1', errorCode: 'UNAUTHENTICATED', decision: 'denied', count: 600 });
    expect(await recordCount()).toBe(before + 3 + 1);
    // `audit query --denied` finds them alongside the authenticated denials.
    expect((await reader.query({ deniedOnly: true, limit: 100 })).length).toBe(4);
  });
});
