// A ledger belongs to one CA (issue 17.3) and its signed head is anchored outside the database
// (issue 12.6), on every backend, through the real commands: opening another CA's ledger is an
// error naming both; a tail cut back (records and checkpoints deleted after N) is named by
// `audit verify` and refused at start-up; the default --db follows the key directory.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { DEFAULT_LEDGER_FILE, LEDGER_HEAD_FILE, loadOrCreateLedgerKey, openLedger } from '../../src/ledger/index.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { BACKENDS, type FreshLedgerDb } from './backends.ts';
import { fakeClock, T0 } from './test_ca.ts';

async function meshca(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { env: {}, clock: fakeClock(Date.now()), stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
  return { code, out, err };
}

const EVENT = (i: number) => ({ type: 'ca' as const, timeMs: T0 + i, event: 'server-start' as const, actor: 'meshca serve', detail: { n: i } });

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip !== undefined)(`a ledger bound to its CA, on ${backend.name}`, () => {
    let db: FreshLedgerDb;
    let dir: string;
    beforeEach(async () => {
      db = await backend.fresh();
      dir = mkdtempSync(join(tmpdir(), 'meshca-binding-'));
    });
    afterEach(async () => {
      await db.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it("refuses another CA's key directory in sign, root status and audit, naming both CAs", async () => {
      const [a, b] = [join(dir, 'a'), join(dir, 'b')];
      expect((await meshca(['ca', 'init', '--keys', a])).code).toBe(0);
      expect((await meshca(['ca', 'init', '--keys', b])).code).toBe(0);
      const csr = join(dir, 'w.csr');
      writeFileSync(csr, opensslCsr().csrPem);
      const id = 'spiffe://cluster.local/ns/a/sa/b';
      expect((await meshca(['sign', '--keys', a, '--db', db.url, '--csr', csr, '--id', id])).code).toBe(0);
      const keyA = loadOrCreateLedgerKey(a).keyId.slice(0, 16);
      const keyB = loadOrCreateLedgerKey(b).keyId.slice(0, 16);

      for (const args of [
        ['sign', '--keys', b, '--db', db.url, '--csr', csr, '--id', id],
        ['root', 'status', '--keys', b, '--db', db.url],
        ['audit', 'query', '--keys', b, '--db', db.url],
        ['audit', 'verify', '--keys', b, '--db', db.url],
      ]) {
        const run = await meshca(args);
        expect(run.code, args.join(' ')).not.toBe(0);
        expect(run.err).toContain('belongs to another CA');
        expect(run.err).toContain(`ledger key ${keyA}`);
        expect(run.err).toContain(`ledger key ${keyB}`);
        expect(run.err).toContain(`not to the CA in ${b}`);
      }
      // The right CA still reads and writes it; its first record names the binding.
      expect((await meshca(['audit', 'verify', '--keys', a, '--db', db.url])).code).toBe(0);
      const first = JSON.parse((await meshca(['audit', 'query', '--keys', a, '--db', db.url, '--json'])).out).at(-1);
      expect(first).toMatchObject({ seq: 1, event: { event: 'ledger-bind', detail: { created: true, newLedger: false, ledgerKeyId: expect.stringMatching(new RegExp(`^${keyA}`)) } } });
    });

    it('names a tail cut back past the anchored head, in audit verify and at start-up', async () => {
      const keys = join(dir, 'keys');
      const ledger = await openLedger(db.url, { clock: fakeClock(T0), keysDir: keys, checkpointEvery: 5 });
      for (let i = 0; i < 40; i++) await ledger.append(EVENT(i));
      await ledger.close();
      const anchor = JSON.parse(readFileSync(join(keys, LEDGER_HEAD_FILE), 'utf8')) as { seq: number };
      expect(anchor.seq).toBe(41);
      expect((await meshca(['audit', 'verify', '--keys', keys, '--db', db.url])).code).toBe(0);

      // Cut the tail: records and checkpoints after 6. The database alone looks whole.
      await db.sql.exec('DELETE FROM meshca_ledger_records WHERE seq > 6');
      await db.sql.exec('DELETE FROM meshca_ledger_checkpoints WHERE seq > 6');
      const alone = await meshca(['audit', 'verify', '--keys', join(dir, 'no-keys'), '--db', db.url]);
      expect(alone.code).toBe(0);
      expect(alone.err).toContain('records cut from the tail of the ledger cannot be detected');

      const cut = await meshca(['audit', 'verify', '--keys', keys, '--db', db.url]);
      expect(cut.code).toBe(1);
      expect(cut.out).toContain(`does NOT verify: the ledger ends at seq 6 but its anchor ${join(keys, LEDGER_HEAD_FILE)} says 41 were checkpointed`);
      expect(cut.out).toContain('records 7–41 were cut from its tail');
      const json = JSON.parse((await meshca(['audit', 'verify', '--keys', keys, '--db', db.url, '--json'])).out);
      expect(json).toMatchObject({ ok: false, anchoredHead: { seq: 41, held: false }, problems: [{ kind: 'removed', seq: 7 }] });

      await expect(openLedger(db.url, { clock: fakeClock(T0), keysDir: keys })).rejects.toMatchObject({
        code: 'LEDGER_UNAVAILABLE',
        message: expect.stringContaining('the ledger ends at seq 6 but its anchor'),
      });
    });

    it('refuses to write, and reports unhealthy, once records are deleted under a running writer', async () => {
      const keys = join(dir, 'keys');
      const ledger = await openLedger(db.url, { clock: fakeClock(T0), keysDir: keys, checkpointEvery: 1 });
      try {
        for (let i = 0; i < 5; i++) await ledger.append(EVENT(i));
        expect(ledger.health()).toBeUndefined();
        await db.sql.exec('DELETE FROM meshca_ledger_records WHERE seq > 2');
        await db.sql.exec('DELETE FROM meshca_ledger_checkpoints WHERE seq > 2');
        await expect(ledger.append(EVENT(5))).rejects.toMatchObject({ code: 'LEDGER_UNAVAILABLE', message: expect.stringContaining('went back from record 6 to 2 while meshca had it open') });
        expect(ledger.health()).toMatch(/went back from record 6 to 2/);
        // Still refused: nothing is appended onto the shortened chain.
        await expect(ledger.append(EVENT(6))).rejects.toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
        expect((await ledger.query({ order: 'desc', limit: 1 }))[0]!.seq).toBe(2);
        // A running CA's own Verify (what `audit verify --server` asks) compares with its anchor too.
        const report = await ledger.verify();
        expect(report).toMatchObject({ ok: false, anchoredHead: { seq: 6, held: false } });
        expect(report.problems[0]!.message).toMatch(/the ledger ends at seq 2 but its anchor .*ledger-head\.json says 6 were checkpointed/);
      } finally {
        await ledger.close();
      }
    });

    it('refuses to start an emptied ledger for a CA that anchored one, unless --new-ledger', async () => {
      const keys = join(dir, 'keys');
      const ledger = await openLedger(db.url, { clock: fakeClock(T0), keysDir: keys });
      await ledger.append(EVENT(0));
      await ledger.close();
      await db.sql.exec('DELETE FROM meshca_ledger_records');
      await db.sql.exec('DELETE FROM meshca_ledger_checkpoints');
      await db.sql.exec("DELETE FROM meshca_ledger_meta WHERE key <> 'schema_version'");
      await expect(openLedger(db.url, { clock: fakeClock(T0), keysDir: keys })).rejects.toMatchObject({
        code: 'LEDGER_UNAVAILABLE',
        message: expect.stringMatching(/is empty, but this CA's ledger key has signed 2 records of ledger .*--new-ledger/),
      });
      const fresh = await openLedger(db.url, { clock: fakeClock(T0), keysDir: keys, newLedger: true });
      const [first] = await fresh.query({ order: 'asc', limit: 1 });
      await fresh.close();
      expect(first!.event).toMatchObject({ event: 'ledger-bind', detail: { newLedger: true, replacesSeq: 2 } });
      // The anchor now follows the new ledger.
      expect((await meshca(['audit', 'verify', '--keys', keys, '--db', db.url])).code).toBe(0);
    });
  });
}

describe('the default --db', () => {
  it('is sqlite:<keys>/ledger.db, so two CAs never share a ledger', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshca-default-db-'));
    try {
      const csr = join(dir, 'w.csr');
      writeFileSync(csr, opensslCsr().csrPem);
      for (const ca of ['one', 'two']) {
        const keys = join(dir, ca);
        expect((await meshca(['ca', 'init', '--keys', keys])).code).toBe(0);
        expect((await meshca(['sign', '--keys', keys, '--csr', csr, '--id', 'spiffe://cluster.local/ns/a/sa/b'])).code).toBe(0);
        expect(existsSync(join(keys, DEFAULT_LEDGER_FILE))).toBe(true);
        const records = JSON.parse((await meshca(['audit', 'query', '--keys', keys, '--json'])).out) as unknown[];
        expect(records).toHaveLength(2);
        expect((await meshca(['audit', 'verify', '--keys', keys])).code).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
