// Refused connections are counted, logged at debug, and warned about at most once a minute with
// the number refused since the last warning and the busiest peer, so an operator at the default
// level learns why clients behind one address keep failing their TLS handshakes.

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/index.ts';
import { connectionRefusalReporter, REFUSAL_WARNING_INTERVAL_MS } from '../../src/server/connection_refusals.ts';
import { FakeClock } from '../fakes/clock.ts';

function setup() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const clock = new FakeClock(1_000_000);
  const counted: string[] = [];
  const refuse = connectionRefusalReporter({ port: '--listen', log: createLogger('info', sink), clock, count: (r) => counted.push(r) });
  const warnings = () => lines.filter((l) => l.level === 'warn');
  return { clock, counted, refuse, warnings, lines };
}

describe('connectionRefusalReporter', () => {
  it('warns on the first refusal, then at most once a minute with the count since and the busiest peer', async () => {
    const { clock, counted, refuse, warnings } = setup();
    refuse('10.0.0.7', 'per-peer');
    await new Promise((r) => setImmediate(r));
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({ port: '--listen', refused: 1, peer: '10.0.0.7', reason: 'per-peer', setting: '--max-connections-per-peer' });

    for (let i = 0; i < 5; i++) refuse('10.0.0.8', 'per-peer');
    refuse('10.0.0.9', 'total');
    await clock.advance(REFUSAL_WARNING_INTERVAL_MS - 1);
    refuse('10.0.0.8', 'per-peer');
    await new Promise((r) => setImmediate(r));
    expect(warnings()).toHaveLength(1); // still within the minute

    await clock.advance(1);
    refuse('10.0.0.9', 'total');
    await new Promise((r) => setImmediate(r));
    expect(warnings()).toHaveLength(2);
    expect(warnings()[1]).toMatchObject({ refused: 8, peer: '10.0.0.8', reason: 'per-peer' });
    expect(String(warnings()[1]!.msg)).toContain('refused 8 connection(s)');
    expect(counted).toEqual(['per-peer', 'per-peer', 'per-peer', 'per-peer', 'per-peer', 'per-peer', 'total', 'per-peer', 'total']);
  });

  it('names --max-connections when the total cap refused most', async () => {
    const { refuse, warnings } = setup();
    refuse('10.0.0.1', 'total');
    await new Promise((r) => setImmediate(r));
    expect(warnings()[0]).toMatchObject({ reason: 'total', setting: '--max-connections' });
  });
});
