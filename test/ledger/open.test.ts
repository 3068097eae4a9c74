// Opening a ledger from --db: real files with the right modes, the ledger key, and no silent
// in-memory fallback.

import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { LEDGER_KEY_FILE, loadOrCreateLedgerKey, openLedger, openLedgerWriter } from '../../src/ledger/index.ts';
import { T0 } from './test_ca.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'meshca-open-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const EVENT = { type: 'ca', timeMs: T0, event: 'ca-init', actor: 'cli:test', detail: {} } as const;

describe('opening a ledger', () => {
  it('sqlite: makes the directory and a 0600 database in WAL mode that keeps records after reopening', async () => {
    const path = join(tmp(), 'data', 'sub', 'meshca.db');
    const writer = await openLedgerWriter(`sqlite:${path}`);
    await writer.append(EVENT);
    // The write-ahead log holds the same records, so it is as private as the database.
    expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
    await writer.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const raw = new DatabaseSync(path);
    expect(raw.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    expect(raw.prepare('SELECT count(*) AS n FROM meshca_ledger_records').get()).toEqual({ n: 1 });
    raw.close();
    const again = await openLedger(`sqlite:${path}`);
    expect((await again.query({ limit: 5 })).map((r) => r.event)).toEqual([EVENT]);
    await again.close();
  });

  it('readers refuse to create a ledger that is not there', async () => {
    const path = join(tmp(), 'missing.db');
    await expect(openLedger(`sqlite:${path}`, { mustExist: true })).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringContaining('no ledger at that path') });
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a --db that is not a ledger URL, and never falls back to memory', async () => {
    await expect(openLedgerWriter('mysql://db/meshca')).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringContaining('use sqlite:<path> or postgres://') });
    await expect(openLedgerWriter('sqlite:')).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });

  it('an unreachable PostgreSQL is LEDGER_UNAVAILABLE, and the password is not in the message', async () => {
    const err = await openLedger('postgres://meshca:s3cret-pw@127.0.0.1:1/meshca').catch((e: unknown) => e as Error);
    expect(err).toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
    expect((err as Error).message).not.toContain('s3cret-pw');
  });

  it('makes the ledger key on first use as an 0600 P-256 key in the key directory, then reuses it', () => {
    const keys = tmp();
    const first = loadOrCreateLedgerKey(keys);
    const file = join(keys, LEDGER_KEY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(first.privateKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(loadOrCreateLedgerKey(keys).keyId).toBe(first.keyId);
  });

  it('checkpoints are signed with the key directory\'s ledger key', async () => {
    const keys = tmp();
    const url = `sqlite:${join(tmp(), 'l.db')}`;
    const ledger = await openLedger(url, { keysDir: keys, checkpointEvery: 1 });
    await ledger.append(EVENT);
    await ledger.close();
    const reader = await openLedger(url, { mustExist: true, verifyKeys: [loadOrCreateLedgerKey(keys).publicKey] });
    // The binding record is checkpointed at once, then the event: two checkpoints.
    expect(await reader.verify()).toMatchObject({ ok: true, records: 2, checkpoints: 2, checkpointsSigned: 2, signaturesChecked: true });
    await reader.close();
  });
});
