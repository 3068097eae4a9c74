// The issuance ledger, run against every backend: what is recorded, the hash chain and checkpoints,
// tamper detection through raw SQL, group commit under concurrency, failing closed, and retention.

import { createHash } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SvidIssuer, validateTtlPolicy } from '../../src/ca/index.ts';
import { isMeshcaError } from '../../src/errors/index.ts';
import { canonicalJson, openLedger, recordHash, type IssuanceEvent, type Ledger, type LedgerEvent } from '../../src/ledger/index.ts';
import { parseSpiffeId } from '../../src/spiffe/index.ts';
import { DAY_MS, HOUR_MS } from '../../src/time/index.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { BACKENDS, type FreshLedgerDb } from './backends.ts';
import { fakeClock, makeLedgerKey, makeTestAuthority, T0, type TestAuthority } from './test_ca.ts';

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6cGF5bWVudHM6d2ViIn0.c2lnbmF0dXJlLXNlY3JldA';

function issuance(i: number, over: Partial<IssuanceEvent> = {}): IssuanceEvent {
  return {
    type: 'issuance',
    timeMs: T0 + i * 1000,
    decision: 'granted',
    reason: 'issued',
    channel: 'CreateCertificate',
    spiffeId: `spiffe://cluster.local/ns/ns${i % 3}/sa/sa${i % 5}`,
    namespace: `ns${i % 3}`,
    serviceAccount: `sa${i % 5}`,
    podName: `pod-${i}`,
    serial: `0a${i.toString(16).padStart(30, '0')}`,
    ...over,
  };
}

async function appendMany(ledger: Ledger, n: number, from = 1): Promise<void> {
  for (let i = from; i < from + n; i++) await ledger.append(issuance(i));
}

let ca: TestAuthority;
beforeAll(async () => {
  ca = await makeTestAuthority();
});

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip !== undefined)(`ledger on ${backend.name}`, () => {
    let db: FreshLedgerDb;
    const open: Ledger[] = [];
    async function fresh(opts: Parameters<typeof openLedger>[1] = {}): Promise<Ledger> {
      db ??= await backend.fresh();
      const ledger = await openLedger(db.url, { clock: fakeClock(), ...opts });
      open.push(ledger);
      return ledger;
    }
    afterEach(async () => {
      for (const l of open.splice(0)) await l.close().catch(() => undefined);
      await db?.cleanup();
      db = undefined as unknown as FreshLedgerDb;
    });

    it('records a granted issuance with every fact about it and a denied one with its reason, never the token', async () => {
      const ledger = await fresh({ ledgerKey: makeLedgerKey() });
      const issuer = new SvidIssuer({ authority: () => ca.authority, ledger, clock: fakeClock(), ttl: validateTtlPolicy({ defaultTtlMs: HOUR_MS, maxTtlMs: 24 * HOUR_MS }) });
      const caller = {
        spiffeId: parseSpiffeId('spiffe://cluster.local/ns/payments/sa/web'),
        authenticator: 'jwt',
        namespace: 'payments',
        serviceAccount: 'web',
        podName: 'web-7d9f',
        podUid: '5f0c-uid',
        nodeName: 'node-a',
        token: { sha256: createHash('sha256').update(TOKEN).digest('hex'), jti: 'jti-1', iatMs: T0 - 60_000, expMs: T0 + HOUR_MS },
      };
      const { csrPem } = opensslCsr();
      const svid = await issuer.issueWorkloadSvid({ caller, csrPem, requestedTtlSeconds: 1800, channel: 'CreateCertificate', peer: '10.0.0.7:50000' });
      await expect(issuer.issueWorkloadSvid({ caller, csrPem, requestedTtlSeconds: 48 * 3600, channel: 'CreateCertificate', peer: '10.0.0.7:50001' })).rejects.toMatchObject({ code: 'BAD_TTL' });

      const [denied, granted] = await ledger.query({ limit: 10 });
      expect(granted!.seq).toBe(1);
      expect(granted!.event).toEqual({
        type: 'issuance',
        timeMs: T0,
        decision: 'granted',
        reason: 'issued',
        channel: 'CreateCertificate',
        spiffeId: 'spiffe://cluster.local/ns/payments/sa/web',
        namespace: 'payments',
        serviceAccount: 'web',
        podName: 'web-7d9f',
        podUid: '5f0c-uid',
        nodeName: 'node-a',
        authenticator: 'jwt',
        tokenSha256: caller.token.sha256,
        tokenJti: 'jti-1',
        tokenIatMs: T0 - 60_000,
        tokenExpMs: T0 + HOUR_MS,
        peer: '10.0.0.7:50000',
        csrKeySha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        serial: svid.certificate.serialHex,
        notBeforeMs: svid.certificate.notBeforeMs,
        notAfterMs: svid.certificate.notAfterMs,
        issuerKeyId: ca.authority.keyId,
        rootKeyId: ca.authority.rootKeyId,
        requestedTtlSeconds: 1800,
        grantedTtlSeconds: 1800,
        // A token grant starts its chain of renewals now (--max-renewal-age, docs/security.md).
        detail: { grantedAt: new Date(T0).toISOString() },
      });
      expect(denied!.event).toMatchObject({ decision: 'denied', errorCode: 'BAD_TTL', reason: expect.stringContaining('48h'), spiffeId: caller.spiffeId.uri, tokenSha256: caller.token.sha256, requestedTtlSeconds: 48 * 3600 });
      expect(denied!.event).not.toHaveProperty('serial');

      // Nothing anywhere in the database holds the token or any part of its signature.
      await ledger.close();
      const everything = JSON.stringify([
        await db.sql.exec('SELECT * FROM meshca_ledger_records'),
        await db.sql.exec('SELECT * FROM meshca_ledger_checkpoints'),
        await db.sql.exec('SELECT * FROM meshca_ledger_meta'),
      ]);
      expect(everything).toContain(svid.certificate.serialHex);
      expect(everything).not.toContain(TOKEN);
      expect(everything).not.toContain(TOKEN.split('.')[2]);
    });

    it('finds records by SPIFFE ID, namespace, service account, pod, serial, time and denial, newest first', async () => {
      const ledger = await fresh();
      await appendMany(ledger, 30);
      await ledger.append(issuance(31, { decision: 'denied', reason: 'namespace ns1 is denied', errorCode: 'PERMISSION_DENIED', serial: undefined }));
      await ledger.append({ type: 'ca', timeMs: T0 + 40_000, event: 'root-prepare', actor: 'cli:ops', detail: { rootKeyId: 'abc' } });

      const byId = await ledger.query({ spiffeId: 'spiffe://cluster.local/ns/ns1/sa/sa1', limit: 100 });
      expect(byId.map((r) => r.seq)).toEqual([31, 16, 1]);
      const bySa = await ledger.query({ namespace: 'ns2', serviceAccount: 'sa0', limit: 100 });
      expect(bySa.map((r) => r.seq)).toEqual([20, 5]);
      expect((await ledger.query({ podName: 'pod-7', limit: 10 })).map((r) => r.seq)).toEqual([7]);
      // Serials match however they are typed: upper case, with colons.
      const serial = issuance(9).serial!.toUpperCase().match(/../g)!.join(':');
      expect((await ledger.query({ serial, limit: 10 })).map((r) => r.seq)).toEqual([9]);
      expect((await ledger.query({ sinceMs: T0 + 10_000, untilMs: T0 + 13_000, limit: 100 })).map((r) => r.seq)).toEqual([12, 11, 10]);
      const denied = await ledger.query({ deniedOnly: true, limit: 100 });
      expect(denied.map((r) => r.event)).toEqual([expect.objectContaining({ reason: 'namespace ns1 is denied', podName: 'pod-31' })]);
      expect((await ledger.query({ type: 'ca', limit: 10 }))[0]!.event).toMatchObject({ event: 'root-prepare', actor: 'cli:ops' });
      expect((await ledger.query({ limit: 3 })).map((r) => r.seq)).toEqual([32, 31, 30]);
      expect((await ledger.query({ limit: 3, order: 'asc', afterSeq: 10 })).map((r) => r.seq)).toEqual([11, 12, 13]);
    });

    it('chains every record to the one before with the documented canonical hash', async () => {
      const ledger = await fresh();
      const events: LedgerEvent[] = [issuance(1), { type: 'audit-query', timeMs: T0, caller: 'spiffe://cluster.local/ns/sec/sa/auditor', decision: 'granted', filter: { ns: 'x' } }];
      const results = [];
      for (const e of events) results.push(await ledger.append(e));
      const rows = await ledger.query({ limit: 10, order: 'asc' });
      expect(rows[0]!.prevHash).toBe('0'.repeat(64));
      expect(rows[1]!.prevHash).toBe(rows[0]!.hash);
      // An auditor can recompute each hash from the export alone: SHA-256 of {"event","prev","seq"}.
      for (const [i, r] of rows.entries()) {
        expect(r.eventJson).toBe(canonicalJson(events[i]));
        const expected = createHash('sha256').update(canonicalJson({ seq: r.seq, prev: r.prevHash, event: events[i] })).digest('hex');
        expect(r.hash).toBe(expected);
        expect(r.hash).toBe(recordHash(r.seq, r.prevHash, r.eventJson));
        expect(results[i]).toEqual({ seq: r.seq, hash: r.hash });
      }
    });

    it('verify passes on an honest ledger with signed checkpoints every N records', async () => {
      const ledger = await fresh({ ledgerKey: makeLedgerKey(), checkpointEvery: 10 });
      await appendMany(ledger, 35);
      const report = await ledger.verify();
      expect(report).toMatchObject({ ok: true, records: 35, headSeq: 35, anchorSeq: 0, problems: [], signaturesChecked: true });
      expect(report.checkpoints).toBeGreaterThanOrEqual(3);
      expect(report.checkpointsSigned).toBe(report.checkpoints);
    });

    it('verify names a record whose content was edited with SQL', async () => {
      const ledger = await fresh({ ledgerKey: makeLedgerKey(), checkpointEvery: 10 });
      await appendMany(ledger, 20);
      await db.sql.exec("UPDATE meshca_ledger_records SET event = replace(event, 'pod-7', 'pod-x') WHERE seq = 7");
      const report = await ledger.verify();
      expect(report.ok).toBe(false);
      expect(report.problems[0]).toMatchObject({ kind: 'altered', seq: 7, message: expect.stringContaining('record 7 was altered') });
    });

    it('verify names a record whose indexed column was edited with SQL, so queries cannot be misled', async () => {
      const ledger = await fresh();
      await appendMany(ledger, 10);
      await db.sql.exec("UPDATE meshca_ledger_records SET spiffe_id = 'spiffe://cluster.local/ns/other/sa/x' WHERE seq = 4");
      const report = await ledger.verify();
      expect(report.problems[0]).toMatchObject({ kind: 'altered', seq: 4, message: expect.stringContaining('indexed columns') });
    });

    it('verify names a record deleted with SQL', async () => {
      const ledger = await fresh({ ledgerKey: makeLedgerKey(), checkpointEvery: 10 });
      await appendMany(ledger, 20);
      await db.sql.exec('DELETE FROM meshca_ledger_records WHERE seq = 12');
      const report = await ledger.verify();
      expect(report.problems[0]).toMatchObject({ kind: 'removed', seq: 12, message: expect.stringContaining('record 12 was removed') });
    });

    it('verify names a record inserted with SQL, even one whose hash and link were computed correctly', async () => {
      const ledger = await fresh({ ledgerKey: makeLedgerKey(), checkpointEvery: 100 });
      await appendMany(ledger, 10);
      // Make room at seq 5 the way an attacker would, then slip in a well-formed record.
      await db.sql.exec('UPDATE meshca_ledger_records SET seq = seq + 1000 WHERE seq >= 5');
      await db.sql.exec('UPDATE meshca_ledger_records SET seq = seq - 999 WHERE seq >= 1000');
      const [four] = await db.sql.exec('SELECT hash FROM meshca_ledger_records WHERE seq = 4');
      const forged = canonicalJson(issuance(99, { spiffeId: 'spiffe://cluster.local/ns/kube-system/sa/admin', namespace: 'kube-system', serviceAccount: 'admin' }));
      const prev = String(four!.hash);
      await db.sql.exec(
        "INSERT INTO meshca_ledger_records (seq, time_ms, type, decision, spiffe_id, namespace, service_account, pod_name, serial, event, prev_hash, hash) VALUES (5, $1, 'issuance', 'granted', 'spiffe://cluster.local/ns/kube-system/sa/admin', 'kube-system', 'admin', 'pod-99', $2, $3, $4, $5)",
        [T0 + 99_000, issuance(99).serial!, forged, prev, recordHash(5, prev, forged)],
      );
      const report = await ledger.verify();
      expect(report.problems[0]).toMatchObject({ kind: 'inserted', seq: 5, message: expect.stringContaining('record 5 was inserted') });
      expect(report.problems.filter((p) => p.kind !== 'checkpoint')).toHaveLength(1);
    });

    it('verify names a forged record appended after the head with SQL', async () => {
      const ledger = await fresh();
      await appendMany(ledger, 5);
      const forged = canonicalJson(issuance(6));
      await db.sql.exec(
        "INSERT INTO meshca_ledger_records (seq, time_ms, type, decision, spiffe_id, namespace, service_account, pod_name, serial, event, prev_hash, hash) VALUES (6, $1, 'issuance', 'granted', $2, 'ns0', 'sa1', 'pod-6', $3, $4, $5, $6)",
        [T0 + 6000, issuance(6).spiffeId!, issuance(6).serial!, forged, 'f'.repeat(64), 'e'.repeat(64)],
      );
      expect((await ledger.verify()).problems[0]).toMatchObject({ kind: 'altered', seq: 6 });
    });

    it('a rewrite that recomputes every later hash is caught by the signed checkpoint covering it', async () => {
      const ledger = await fresh({ ledgerKey: makeLedgerKey(), checkpointEvery: 10 });
      await appendMany(ledger, 10);
      const rows = await ledger.query({ limit: 100, order: 'asc' });
      let prev = rows[2]!.prevHash;
      for (const r of rows.slice(2)) {
        const json = r.seq === 3 ? r.eventJson.replace('pod-3', 'pod-z') : r.eventJson;
        const hash = recordHash(r.seq, prev, json);
        await db.sql.exec('UPDATE meshca_ledger_records SET event = $1, prev_hash = $2, hash = $3, pod_name = $4 WHERE seq = $5', [json, prev, hash, r.seq === 3 ? 'pod-z' : `pod-${r.seq}`, r.seq]);
        prev = hash;
      }
      const report = await ledger.verify();
      expect(report.ok).toBe(false);
      expect(report.problems).toEqual([expect.objectContaining({ kind: 'checkpoint', seq: 10, message: expect.stringContaining('records up to 10 were changed') })]);
    });

    it('verify notices records cut from the end when a checkpoint had covered them', async () => {
      const ledger = await fresh({ ledgerKey: makeLedgerKey(), checkpointEvery: 5 });
      await appendMany(ledger, 10);
      await db.sql.exec('DELETE FROM meshca_ledger_records WHERE seq > 7');
      expect((await ledger.verify()).problems).toEqual([expect.objectContaining({ kind: 'removed', seq: 8, message: expect.stringContaining('records 8–10 were removed') })]);
    });

    it('verify rejects a checkpoint with a bad signature or signed by another key', async () => {
      const ledger = await fresh({ ledgerKey: makeLedgerKey(), checkpointEvery: 5 });
      await appendMany(ledger, 5);
      const stranger = await fresh({ ledgerKey: makeLedgerKey() });
      expect((await stranger.verify()).problems[0]).toMatchObject({ kind: 'checkpoint', seq: 5, message: expect.stringContaining('unknown key') });
      const [cp] = await db.sql.exec('SELECT signature FROM meshca_ledger_checkpoints WHERE seq = 5');
      const sig = Buffer.from(String(cp!.signature), 'base64');
      sig[sig.length - 1]! ^= 0x01;
      await db.sql.exec('UPDATE meshca_ledger_checkpoints SET signature = $1 WHERE seq = 5', [sig.toString('base64')]);
      expect((await ledger.verify()).problems[0]).toMatchObject({ kind: 'checkpoint', seq: 5, message: expect.stringContaining('bad signature') });
    });

    it('concurrent appends are batched and keep one unbroken chain', async () => {
      const ledger = await fresh({ ledgerKey: makeLedgerKey(), checkpointEvery: 100 });
      const results = await Promise.all(Array.from({ length: 500 }, (_, i) => ledger.append(issuance(i + 1))));
      expect(results.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
      expect(await ledger.verify()).toMatchObject({ ok: true, records: 500 });
    });

    it('two ledger instances on the same database appending concurrently keep one chain', async () => {
      const key = makeLedgerKey();
      const a = await fresh({ ledgerKey: key, checkpointEvery: 50 });
      const b = await fresh({ ledgerKey: key, checkpointEvery: 50 });
      const both = await Promise.all(Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? a : b).append(issuance(i + 1))));
      expect(new Set(both.map((r) => r.seq)).size).toBe(400);
      const report = await a.verify();
      expect(report).toMatchObject({ ok: true, records: 400, headSeq: 400 });
    });

    it('a failed write rejects append with LEDGER_UNAVAILABLE, and the CA then issues no certificate', async () => {
      const ledger = await fresh();
      await appendMany(ledger, 3);
      await db.sql.exec('ALTER TABLE meshca_ledger_records RENAME TO meshca_ledger_records_gone');
      const err = await ledger.append(issuance(4)).catch((e: unknown) => e);
      expect(isMeshcaError(err, 'LEDGER_UNAVAILABLE')).toBe(true);
      expect((err as Error).message).toMatch(/could not record/);

      const issuer = new SvidIssuer({ authority: () => ca.authority, ledger, clock: fakeClock(), ttl: validateTtlPolicy({ defaultTtlMs: HOUR_MS, maxTtlMs: 24 * HOUR_MS }) });
      const caller = { spiffeId: parseSpiffeId('spiffe://cluster.local/ns/a/sa/b'), authenticator: 'jwt' };
      let returned: unknown;
      const failure = await issuer
        .issueWorkloadSvid({ caller, csrPem: opensslCsr().csrPem, requestedTtlSeconds: 0, channel: 'CreateCertificate' })
        .then((svid) => (returned = svid))
        .catch((e: unknown) => e);
      expect(returned).toBeUndefined();
      expect(failure).toMatchObject({ code: 'LEDGER_UNAVAILABLE', grpcCode: 14 });

      // Once the database is back, the chain continues where it was: nothing half-written.
      await db.sql.exec('ALTER TABLE meshca_ledger_records_gone RENAME TO meshca_ledger_records');
      await ledger.append(issuance(5));
      expect(await ledger.verify()).toMatchObject({ ok: true, records: 4 });
    });

    it('refuses appends after close with LEDGER_UNAVAILABLE', async () => {
      const ledger = await fresh();
      await ledger.close();
      await expect(ledger.append(issuance(1))).rejects.toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
    });

    it('signs a checkpoint once the oldest uncovered record is older than the interval, and on close', async () => {
      const clock = fakeClock();
      const ledger = await fresh({ ledgerKey: makeLedgerKey(), clock, checkpointEvery: 1000, checkpointIntervalMs: 60_000 });
      await ledger.append(issuance(1));
      await ledger.append(issuance(2));
      expect(await ledger.verify()).toMatchObject({ checkpoints: 0, uncoveredRecords: 2 });
      expect(await ledger.newestCheckpointTimeMs()).toBeUndefined();
      clock.advance(120_000);
      await ledger.append(issuance(3));
      expect(await ledger.verify()).toMatchObject({ checkpoints: 1, uncoveredRecords: 0 });
      expect(await ledger.newestCheckpointTimeMs()).toBe(clock.now());
      await ledger.append(issuance(4));
      await ledger.close();
      expect((await db.sql.exec('SELECT seq FROM meshca_ledger_checkpoints ORDER BY seq')).map((r) => Number(r.seq))).toEqual([3, 4]);
    });

    it('pruning removes old records up to a checkpoint that becomes the anchor, and verify still passes', async () => {
      const clock = fakeClock();
      const ledger = await fresh({ ledgerKey: makeLedgerKey(), clock, checkpointEvery: 10 });
      await appendMany(ledger, 25); // times T0+1s … T0+25s
      for (let i = 26; i <= 30; i++) await ledger.append(issuance(i, { timeMs: T0 + 500 * DAY_MS + i }));
      clock.set(T0 + 500 * DAY_MS + 100);

      // Checkpoints at 10 and 20; prune signs one at 30 first, but record 30 is too young.
      const result = await ledger.prune(clock.now() - 400 * DAY_MS);
      expect(result).toEqual({ removed: 20, anchorSeq: 20 });
      const report = await ledger.verify();
      expect(report).toMatchObject({ ok: true, anchorSeq: 20, records: 11, problems: [] });
      const [pruneEvent] = await ledger.query({ type: 'ca', limit: 1 });
      expect(pruneEvent!.event).toMatchObject({ event: 'ledger-prune', actor: 'retention', detail: { anchorSeq: 20, removed: 20 } });
      expect(await ledger.query({ serial: issuance(20).serial!, limit: 1 })).toEqual([]);
      // Nothing young enough is touched; a second prune has nothing to do.
      expect(await ledger.prune(clock.now() - 400 * DAY_MS)).toEqual({ removed: 0, anchorSeq: 20 });
      // Deleting the first record after the anchor is still caught.
      await db.sql.exec('DELETE FROM meshca_ledger_records WHERE seq = 21');
      expect((await ledger.verify()).problems[0]).toMatchObject({ kind: 'removed', seq: 21 });
    });
  });
}
