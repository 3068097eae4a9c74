// Refusals before authentication are counted per (channel, peer host, code) per interval, flushed
// on the injected clock, bounded in distinct keys (the rest in one '*' bucket), and kept for the
// next interval when the ledger cannot take them.

import { describe, expect, it } from 'vitest';
import { MeshcaError } from '../../src/errors/index.ts';
import { aggregateRefusals, peerHost, type LedgerEvent, type RefusalsEvent } from '../../src/ledger/index.ts';
import { FakeClock } from '../fakes/clock.ts';

function sink(): { events: LedgerEvent[]; failing: boolean; append(e: LedgerEvent): Promise<{ seq: number; hash: string }> } {
  const s = {
    events: [] as LedgerEvent[],
    failing: false,
    async append(e: LedgerEvent) {
      if (s.failing) throw new MeshcaError('LEDGER_UNAVAILABLE', 'disk full');
      s.events.push(e);
      return { seq: s.events.length, hash: '' };
    },
  };
  return s;
}

const refusal = (peer: string, errorCode = 'UNAUTHENTICATED') => ({ channel: 'CreateCertificate', peer, errorCode, reason: 'no credentials' });
const total = (events: readonly LedgerEvent[]) => (events as RefusalsEvent[]).reduce((n, e) => n + e.count, 0);

describe('refusal counting', () => {
  it('counts by peer host (not port) and code, one record each per interval, on the clock', async () => {
    const clock = new FakeClock(1_000_000);
    const ledger = sink();
    const counter = aggregateRefusals({ ledger, clock, intervalMs: 60_000 });
    for (let i = 0; i < 500; i++) counter.count(refusal(`10.0.0.1:${40000 + i}`));
    for (let i = 0; i < 20; i++) counter.count(refusal(`[fd00::2]:${50000 + i}`, 'AUTHN_UNAVAILABLE'));
    await clock.advance(59_999);
    expect(ledger.events).toEqual([]);
    await clock.advance(1);
    await counter.flush();
    expect(ledger.events).toEqual([
      { type: 'refusals', timeMs: 1_060_000, sinceMs: 1_000_000, decision: 'denied', channel: 'CreateCertificate', peer: '10.0.0.1', errorCode: 'UNAUTHENTICATED', reason: 'no credentials', count: 500 },
      { type: 'refusals', timeMs: 1_060_000, sinceMs: 1_000_000, decision: 'denied', channel: 'CreateCertificate', peer: 'fd00::2', errorCode: 'AUTHN_UNAVAILABLE', reason: 'no credentials', count: 20 },
    ]);
    // A quiet interval writes nothing.
    await clock.advance(60_000);
    await counter.flush();
    expect(ledger.events).toHaveLength(2);
    await counter.stop();
  });

  it('records at most maxKeys keys per interval and the rest in one * bucket; the counts add up', async () => {
    const clock = new FakeClock();
    const ledger = sink();
    const counter = aggregateRefusals({ ledger, clock, maxKeys: 10 });
    for (let peer = 0; peer < 1000; peer++) for (let n = 0; n < 3; n++) counter.count(refusal(`10.1.${peer >> 8}.${peer & 255}:1234`));
    await counter.stop();
    expect(ledger.events).toHaveLength(11);
    const overflow = ledger.events.at(-1) as RefusalsEvent;
    expect(overflow).toMatchObject({ peer: '*', errorCode: '*', channel: '*', count: 990 * 3 });
    expect(overflow.reason).toMatch(/at least 100 more \(channel, peer, code\) keys than the 10 recorded one by one/);
    expect(total(ledger.events)).toBe(3000);
  });

  it('keeps the counts for the next interval when the ledger cannot record them', async () => {
    const clock = new FakeClock();
    const ledger = sink();
    const errors: string[] = [];
    const counter = aggregateRefusals({ ledger, clock, onError: (m) => errors.push(m) });
    for (let i = 0; i < 7; i++) counter.count(refusal('10.0.0.9:1'));
    ledger.failing = true;
    await counter.flush();
    expect(errors[0]).toMatch(/could not record 1 refusal counts: disk full; kept for the next interval/);
    ledger.failing = false;
    counter.count(refusal('10.0.0.9:2'));
    await counter.stop();
    expect(ledger.events).toMatchObject([{ peer: '10.0.0.9', count: 8 }]);
  });

  it('reads the host out of transport peer addresses', () => {
    expect(peerHost('127.0.0.1:5000')).toBe('127.0.0.1');
    expect(peerHost('[::1]:5000')).toBe('::1');
    expect(peerHost(undefined)).toBe('unknown');
    expect(peerHost('unix:/run/x.sock')).toBe('unix:/run/x.sock');
  });
});
