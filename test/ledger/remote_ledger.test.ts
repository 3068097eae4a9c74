// A RemoteLedger (a cluster worker's) against a real SQLite ledger behind answerLedgerRequest (the
// primary's): appends of one turn travel as one request and land in the writer's one chain; a
// failure of the writer's ledger and a lost channel both fail closed with LEDGER_UNAVAILABLE.

import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isMeshcaError } from '../../src/errors/index.ts';
import { answerLedgerRequest, openLedger, RemoteLedger, type Ledger, type LedgerRequest, type LedgerEvent } from '../../src/ledger/index.ts';
import { tempDir } from '../helpers/serve.ts';
import { fakeClock, makeLedgerKey, T0 } from './test_ca.ts';

const dir = tempDir();
afterAll(() => dir.cleanup());

const event = (i: number): LedgerEvent => ({ type: 'issuance', timeMs: T0 + i, decision: 'granted', reason: 'issued', channel: 'CreateCertificate', spiffeId: `spiffe://cluster.local/ns/a/sa/s${i}` });

/** A channel that delivers asynchronously, as IPC does, and remembers what was sent. */
function wire(writer: Ledger) {
  const sent: LedgerRequest[] = [];
  let open = true;
  const remote: RemoteLedger = new RemoteLedger(
    {
      send(id, request) {
        if (!open) return false;
        sent.push(request);
        void answerLedgerRequest(writer, request).then((reply) => setImmediate(() => remote.receive(id, reply)));
        return true;
      },
    },
    'the primary process',
  );
  return { remote, sent, cut: () => (open = false) };
}

describe('RemoteLedger', () => {
  it('sends the appends of one turn as one request; each record lands in the writer’s chain, which verifies', async () => {
    const writer = await openLedger(`sqlite:${join(dir.path, 'a.db')}`, { clock: fakeClock(), ledgerKey: makeLedgerKey() });
    const { remote, sent } = wire(writer);
    try {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => remote.append(event(i))));
      expect(sent.filter((r) => r.op === 'append')).toHaveLength(1);
      expect(results.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      const records = await remote.query({ order: 'asc', limit: 100 });
      expect(records.map((r) => r.hash)).toEqual(results.map((r) => r.hash));
      const report = await remote.verify();
      expect(report).toMatchObject({ ok: true, records: 50 });
      expect(remote.health()).toBeUndefined();
    } finally {
      await writer.close();
    }
  });

  it('fails closed: the writer’s ledger closed, or the channel gone, rejects with LEDGER_UNAVAILABLE', async () => {
    const writer = await openLedger(`sqlite:${join(dir.path, 'b.db')}`, { clock: fakeClock(), ledgerKey: makeLedgerKey() });
    const { remote, cut } = wire(writer);
    await remote.append(event(1));
    await writer.close();
    const closed = await remote.append(event(2)).catch((err: unknown) => err);
    expect(isMeshcaError(closed, 'LEDGER_UNAVAILABLE')).toBe(true);
    expect((closed as Error).message).toMatch(/is closed/);
    expect(remote.health()).toMatch(/is closed/);

    cut();
    const lost = await remote.append(event(3)).catch((err: unknown) => err);
    expect(isMeshcaError(lost, 'LEDGER_UNAVAILABLE')).toBe(true);
    expect((lost as Error).message).toBe("the ledger's writer (the primary process) is unavailable: its channel is closed");
  });

  it('rejects what is waiting when the writer goes away mid-request', async () => {
    const remote = new RemoteLedger({ send: () => true }, 'the primary process');
    const waiting = remote.append(event(1)).catch((err: unknown) => err);
    const query = remote.query({ limit: 1 }).catch((err: unknown) => err);
    await new Promise((r) => setImmediate(r));
    remote.lost('the primary process exited');
    for (const err of [await waiting, await query]) {
      expect(isMeshcaError(err, 'LEDGER_UNAVAILABLE')).toBe(true);
      expect((err as Error).message).toBe("the ledger's writer (the primary process) is unavailable: the primary process exited");
    }
    expect(remote.health()).toMatch(/unavailable/);
  });
});
