// `meshca audit query|export|verify|prune` and `meshca sign` through the real command line, on
// every ledger backend: what an operator or auditor types, and what they get back.

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { canonicalJson, LEDGER_KEY_FILE, openLedger } from '../../src/ledger/index.ts';
import { DAY_MS } from '../../src/time/index.ts';
import { opensslCsr, opensslVerify } from '../helpers/csr.ts';
import { BACKENDS, type FreshLedgerDb } from '../ledger/backends.ts';
import { fakeClock, T0 } from '../ledger/test_ca.ts';

interface Run {
  code: number;
  out: string;
  err: string;
}

async function meshca(args: string[], clockMs = Date.now()): Promise<Run> {
  let out = '';
  let err = '';
  const code = await main(args, { env: {}, clock: fakeClock(clockMs), stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
  return { code, out, err };
}

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip !== undefined)(`meshca audit on ${backend.name}`, () => {
    let db: FreshLedgerDb;
    let dir: string;
    let keys: string;
    beforeEach(async () => {
      db = await backend.fresh();
      dir = mkdtempSync(join(tmpdir(), 'meshca-audit-cli-'));
      keys = join(dir, 'keys');
    });
    afterEach(async () => {
      await db.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('meshca sign records a sign-cli issuance that audit query finds by SPIFFE ID and by serial', async () => {
      expect((await meshca(['ca', 'init', '--keys', keys])).code).toBe(0);
      const csr = join(dir, 'w.csr');
      const { writeFileSync } = await import('node:fs');
      const { csrPem } = opensslCsr();
      writeFileSync(csr, csrPem);
      const id = 'spiffe://cluster.local/ns/payments/sa/web';
      const signed = await meshca(['sign', '--keys', keys, '--db', db.url, '--csr', csr, '--id', id, '--json']);
      expect(signed.err).toBe('');
      expect(signed.code).toBe(0);
      const { serial, chain } = JSON.parse(signed.out) as { serial: string; chain: string[] };
      opensslVerify(chain.at(-1)!, chain[1]!, chain[0]!);

      const byId = await meshca(['audit', 'query', '--db', db.url, '--id', id, '--json']);
      expect(byId.code).toBe(0);
      const [rec] = JSON.parse(byId.out) as { seq: number; event: Record<string, unknown> }[];
      expect(rec!.event).toMatchObject({ type: 'issuance', channel: 'sign-cli', decision: 'granted', spiffeId: id, namespace: 'payments', serviceAccount: 'web', authenticator: 'operator', serial });
      const colonSerial = serial.toUpperCase().match(/../g)!.join(':');
      const bySerial = await meshca(['audit', 'query', '--db', db.url, '--serial', colonSerial]);
      expect(bySerial.out).toMatch(/^SEQ\s+TIME\s+TYPE\s+DECISION\s+SUBJECT\s+SERIAL\s+DETAIL\n/);
      expect(bySerial.out).toContain(`${id}  ${serial}`);
      expect((await meshca(['audit', 'verify', '--db', db.url, '--keys', keys])).code).toBe(0);
    });

    it('audit query filters, prints a table, JSON or CSV, and refuses a bad filter naming it', async () => {
      const ledger = await openLedger(db.url, { clock: fakeClock() });
      const now = Date.now();
      await ledger.append({ type: 'issuance', timeMs: now - 2 * DAY_MS, decision: 'granted', reason: 'issued', channel: 'CreateCertificate', spiffeId: 'spiffe://cluster.local/ns/a/sa/old', namespace: 'a', serviceAccount: 'old', podName: 'old-1', serial: 'aa01' });
      await ledger.append({ type: 'issuance', timeMs: now - 1000, decision: 'denied', reason: 'namespace "a" is denied, "=cmd"', errorCode: 'PERMISSION_DENIED', channel: 'CreateCertificate', spiffeId: 'spiffe://cluster.local/ns/a/sa/new', namespace: 'a', serviceAccount: 'new', podName: 'new-1' });
      await ledger.close();

      const recent = await meshca(['audit', 'query', '--db', db.url, '--ns', 'a', '--since', '24h', '--json'], now);
      expect((JSON.parse(recent.out) as { seq: number }[]).map((r) => r.seq)).toEqual([2]);
      const denied = await meshca(['audit', 'query', '--db', db.url, '--denied', '--csv'], now);
      const [header, row] = denied.out.trim().split('\n');
      expect(header).toMatch(/^seq,time,type,decision,reason,error_code,channel,spiffe_id,/);
      expect(row).toContain('"namespace ""a"" is denied, ""=cmd"""');
      expect(row).toContain('PERMISSION_DENIED');
      expect((await meshca(['audit', 'query', '--db', db.url, '--pod', 'nobody'])).out).toBe('no records match\n');
      const bad = await meshca(['audit', 'query', '--db', db.url, '--since', 'yesterday']);
      expect(bad.code).toBe(2);
      expect(bad.err).toContain('since: "yesterday" is neither an ISO 8601 time');
      expect((await meshca(['audit', 'query', '--db', db.url, '--id', 'http://x'])).code).toBe(2);
    });

    it('audit export writes JSON lines, oldest first, that an auditor can re-hash into the chain', async () => {
      const ledger = await openLedger(db.url, { clock: fakeClock() });
      for (let i = 0; i < 25; i++) await ledger.append({ type: 'ca', timeMs: T0 + i, event: 'server-start', actor: 'meshca serve', detail: { n: i } });
      await ledger.close();
      const run = await meshca(['audit', 'export', '--db', db.url]);
      expect(run.code).toBe(0);
      expect(run.err).toBe('exported 25 records\n');
      const lines = run.out.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; prevHash: string; hash: string; event: unknown });
      let prev = '0'.repeat(64);
      for (const [i, l] of lines.entries()) {
        expect(l.seq).toBe(i + 1);
        expect(l.prevHash).toBe(prev);
        expect(createHash('sha256').update(canonicalJson({ event: l.event, prev, seq: l.seq })).digest('hex')).toBe(l.hash);
        prev = l.hash;
      }
    });

    it('audit verify exits 1 and names the record edited with SQL', async () => {
      const ledger = await openLedger(db.url, { clock: fakeClock(), keysDir: keys, checkpointEvery: 3 });
      for (let i = 0; i < 6; i++) await ledger.append({ type: 'ca', timeMs: T0 + i, event: 'root-activate', actor: 'cli:ops', detail: { n: i } });
      await ledger.close();
      expect(statSync(join(keys, LEDGER_KEY_FILE)).mode & 0o777).toBe(0o600);
      const honest = await meshca(['audit', 'verify', '--db', db.url, '--keys', keys]);
      expect(honest.code).toBe(0);
      // Record 1 binds the ledger to the CA (and is checkpointed at once); the six events follow.
      expect(honest.out).toMatch(/verifies: 7 records \(1–7\), 3 of 3 checkpoints signed by the ledger key; holds the head anchored in .*ledger-head\.json \(record 7\)/);

      await db.sql.exec(`UPDATE meshca_ledger_records SET event = replace(event, 'cli:ops', 'cli:mallory') WHERE seq = 4`);
      const tampered = await meshca(['audit', 'verify', '--db', db.url, '--keys', keys]);
      expect(tampered.code).toBe(1);
      expect(tampered.out).toContain('does NOT verify: record 4 was altered');
      const json = await meshca(['audit', 'verify', '--db', db.url, '--keys', keys, '--json']);
      expect(JSON.parse(json.out).problems[0]).toMatchObject({ kind: 'altered', seq: 4 });
    });

    it('audit prune --retain removes old records and the pruned ledger still verifies', async () => {
      const ledger = await openLedger(db.url, { clock: fakeClock(T0), keysDir: keys, checkpointEvery: 5 });
      for (let i = 0; i < 12; i++) await ledger.append({ type: 'ca', timeMs: T0 + i, event: 'server-start', actor: 'meshca serve', detail: {} });
      await ledger.close();
      const later = T0 + 401 * DAY_MS;
      const pruned = await meshca(['audit', 'prune', '--db', db.url, '--keys', keys, '--retain', '400d', '--json'], later);
      expect(pruned.code).toBe(0);
      // prune signs the head first, so everything older than the retention goes (the binding record and the 12 events).
      expect(JSON.parse(pruned.out)).toMatchObject({ removed: 13, anchorSeq: 13 });
      const verified = await meshca(['audit', 'verify', '--db', db.url, '--keys', keys], later);
      expect(verified.code).toBe(0);
      expect(verified.out).toContain('pruned up to the checkpoint at record 13');
      expect((await meshca(['audit', 'prune', '--db', db.url, '--keys', keys, '--retain', '0s'])).code).toBe(2);
    });
  });
}

describe('meshca audit on a missing ledger', () => {
  it('says there is no ledger instead of making an empty one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshca-audit-none-'));
    try {
      const run = await meshca(['audit', 'verify', '--db', `sqlite:${join(dir, 'none.db')}`, '--keys', dir]);
      expect(run.code).toBe(2);
      expect(run.err).toContain('there is no ledger at that path');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
