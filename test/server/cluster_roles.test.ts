// What a `--workers` worker does and leaves to others, in-process on a fake clock: worker 0 rotates
// intermediates on schedule and worker 1 does not (it follows through the key store poll); neither
// serves the HTTP side port nor writes server-start (the primary does both, once); both record
// into the ledger they are given (the primary's, in a cluster).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { DEV_TOKEN_KEY_FILE } from '../../src/authn/index.ts';
import { initCa } from '../../src/ca/index.ts';
import { loadSettings } from '../../src/config/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import { openPrimaryLedger } from '../../src/server/context.ts';
import { SERVE_OPTIONS, serveConfigFrom } from '../../src/server/index.ts';
import { systemClock } from '../../src/time/index.ts';
import { openLedger, type CaEvent } from '../../src/ledger/index.ts';
import { DirectoryKeyStore } from '../../src/rotation/index.ts';
import { HOUR_MS, MINUTE_MS } from '../../src/time/index.ts';
import { FakeClock } from '../fakes/clock.ts';
import { startTestCa, tempDir } from '../helpers/serve.ts';

const dir = tempDir();
afterAll(() => dir.cleanup());

async function workerAfterTwoThirdsOfTheIntermediate(rank: number) {
  const clock = new FakeClock(Math.ceil(Date.now() / 1000) * 1000);
  const keysDir = join(dir.path, `keys-${rank}`);
  await initCa({ keysDir, trustDomain: 'cluster.local', organization: 't', keyType: 'ec-p256', rootTtlMs: 1000 * HOUR_MS, caTtlMs: 90 * MINUTE_MS, nowMs: clock.now(), force: false });
  const ledger = await openLedger(`sqlite:${join(dir.path, `ledger-${rank}.db`)}`, { clock, keysDir });
  const ca = await startTestCa(['--db', `sqlite:${join(dir.path, `unused-${rank}.db`)}`, '--max-ttl', '10m', '--default-ttl', '5m'], { clock, keysDir, deps: { worker: { rank, ledger } } });
  const states = () => new DirectoryKeyStore(keysDir).snapshot(clock.now()).state.intermediates.map((s) => s.state);
  try {
    // Past two thirds of the intermediate's life a successor is due (rotation checks every 30 s).
    await clock.advance(61 * MINUTE_MS);
    const caEvents = async () => (await ledger.query({ type: 'ca', order: 'asc', limit: 100 })).map((r) => (r.event as CaEvent).event);
    if (rank === 0) {
      // A rotation writes the key store and the ledger (real I/O): wait for worker 0's to land.
      await vi.waitFor(async () => {
        expect(await caEvents()).toContain('intermediate-prepare');
        expect(states()).toEqual(['active', 'prepared']);
      }, { timeout: 5_000, interval: 20 });
    } else {
      // The check at the due time has run and passed the rotation by (it warns of the expiry after deciding).
      await vi.waitFor(() => expect(ca.rawLogs()).toContain('the intermediate CA certificate expires in 30m'), { timeout: 5_000, interval: 20 });
    }
    const issued = await ledger.query({ type: 'issuance', limit: 100 });
    return { httpAddress: ca.server.httpAddress, states: states(), caEvents: await caEvents(), issued: issued.length };
  } finally {
    await ca.server.close(0);
    await ledger.close();
  }
}

describe('cluster worker roles', () => {
  it('the primary makes the shared key files before any worker starts, so that every worker trusts the one development token key', async () => {
    const keysDir = join(dir.path, 'keys-primary');
    const { values } = loadSettings(SERVE_OPTIONS, ['--keys', keysDir, '--db', `sqlite:${join(dir.path, 'primary.db')}`, '--dev-tokens'], {});
    const primary = await openPrimaryLedger(serveConfigFrom(values), { clock: systemClock, log: createLogger('silent') });
    try {
      expect(existsSync(join(keysDir, 'ca-key.pem'))).toBe(true);
      expect(existsSync(join(keysDir, DEV_TOKEN_KEY_FILE))).toBe(true);
    } finally {
      await primary.ledger?.close();
      await primary.close();
    }
  });

  it('worker 1 leaves scheduled rotation to worker 0; neither serves the side port or writes server-start', async () => {
    const second = await workerAfterTwoThirdsOfTheIntermediate(1);
    expect(second.httpAddress).toBe('');
    expect(second.states).toEqual(['active']);
    expect(second.caEvents).toEqual(['ledger-bind']);
    // Its serving certificates (renewed at half the capped life) went into the ledger it was given.
    expect(second.issued).toBeGreaterThan(0);

    const first = await workerAfterTwoThirdsOfTheIntermediate(0);
    expect(first.httpAddress).toBe('');
    expect(first.states).toEqual(['active', 'prepared']);
    expect(first.caEvents).toEqual(['ledger-bind', 'intermediate-prepare']);
  });
});
