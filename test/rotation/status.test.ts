// `meshca root status` on a second rotation: "distributed since" is when the bundle last changed (the
// second root joined), not an earlier retire or prepare, and "received by" counts only identities
// issued a certificate after every serve distributes that bundle.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HOUR_MS, MINUTE_MS } from '../../src/time/index.ts';
import { FakeClock } from '../fakes/clock.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { meshcaInProcess, tempDir } from '../helpers/serve.ts';

describe('meshca root status', () => {
  const dir = tempDir('meshca-status-');
  afterAll(() => dir.cleanup());
  const keys = join(dir.path, 'keys');
  const db = `sqlite:${join(dir.path, 'ledger.db')}`;
  const clock = new FakeClock(Date.parse('2026-11-01T00:00:00Z'));
  const meshca = (...args: string[]) => meshcaInProcess([...args, '--keys', keys, ...(args[0] === 'ca' ? [] : ['--db', db])], { clock });
  const csr = join(dir.path, 'req.csr');
  const sign = (ns: string) => meshca('sign', '--csr', csr, '--id', `spiffe://cluster.local/ns/${ns}/sa/default`);

  it('dates the bundle from the latest root to join or leave it and counts who received it since', async () => {
    writeFileSync(csr, opensslCsr().csrPem);
    expect((await meshca('ca', 'init')).code).toBe(0);
    // A first rotation, finished: the bundle changed when the old root left.
    expect((await meshca('root', 'prepare')).code).toBe(0);
    expect((await meshca('root', 'activate', '--force')).code).toBe(0);
    await clock.advance(HOUR_MS);
    expect((await meshca('root', 'retire', '--force')).code).toBe(0);
    await clock.advance(HOUR_MS);
    expect((await sign('before')).code).toBe(0);

    // A second rotation: the bundle changes again when the third root joins.
    await clock.advance(HOUR_MS);
    const joinedAt = clock.now();
    expect((await meshca('root', 'prepare')).code).toBe(0);
    await clock.advance(MINUTE_MS);
    expect((await sign('after')).code).toBe(0);
    expect((await meshca('root', 'activate', '--force')).code).toBe(0);
    await clock.advance(MINUTE_MS);

    const status = JSON.parse((await meshca('root', 'status', '--json')).stdout);
    expect(status.bundle.since).toBe(new Date(joinedAt).toISOString());
    expect(status.acknowledgements).toEqual({ received: 1, pending: 1, truncated: false });
    const human = (await meshca('root', 'status')).stdout;
    expect(human).toContain(`distributed since ${new Date(joinedAt).toISOString()}`);
    expect(human).toContain('received by 1 workload identities since then; 1 seen before and not since');
  }, 60_000);
});
