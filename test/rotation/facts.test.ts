// Root rotation waits on facts, not flags: a CA that grants up to 48h is running, a 1h and a 25h
// certificate are issued through it, and `meshca root activate|retire` refuse until what was issued
// (from the ledger) and what the running CA may still issue have expired, naming when that is.
// --max-ttl no longer exists on these commands; only --force skips the wait, and the ledger says so.

import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLedger } from '../../src/ledger/index.ts';
import { HOUR_MS } from '../../src/time/index.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { meshcaInProcess, startTestCa, tempDir } from '../helpers/serve.ts';

const meshca = (args: string[]) => meshcaInProcess(args);

const safeFrom = (stderr: string) => Date.parse(/Safe from (\S+):/.exec(stderr)?.[1] ?? 'none');

describe('root rotation waits from facts', () => {
  const dir = tempDir('meshca-facts-');
  afterAll(() => dir.cleanup());
  const keys = join(dir.path, 'keys');
  const db = `sqlite:${join(dir.path, 'ledger.db')}`;
  const root = (...args: string[]) => meshca(['root', ...args, '--keys', keys, '--db', db]);

  it('refuses activate and retire until the 25h certificate and the running CA’s 48h are out, whatever --max-ttl says', async () => {
    expect((await meshca(['ca', 'init', '--keys', keys])).code).toBe(0);
    const ca = await startTestCa(['--db', db, '--max-ttl', '48h'], { keysDir: keys });
    let long: X509Certificate;
    let preparedAtMs: number;
    try {
      const token = (await meshca(['token', 'mint', '--keys', keys, '--ns', 'default', '--sa', 'web'])).stdout.trim();
      const client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem });
      await client.createCertificate({ csr: opensslCsr().csrPem, validityDuration: 3600, token });
      long = new X509Certificate((await client.createCertificate({ csr: opensslCsr().csrPem, validityDuration: 25 * 3600, token })).certChain[0]!);
      client.close();

      preparedAtMs = Date.now();
      expect((await root('prepare')).code).toBe(0);

      // The flag an operator could mistype is gone.
      const flag = await root('activate', '--max-ttl', '10s');
      expect(flag.code).toBe(2);
      expect(flag.stderr).toBe('meshca root activate: unknown option --max-ttl; see --help\n');

      // While the 48h CA runs, its maximum sets the wait.
      const running = await root('activate');
      expect(running.code).toBe(1);
      expect(running.stderr).toMatch(/^meshca root activate: refused: .*\(the CA started \S+ \(instance [0-9a-f]{16}\) grants up to 48h, and every serve takes up to 5s to follow the key store\).*Safe from \S+: try again in 4[78]h/);
      expect(safeFrom(running.stderr) - preparedAtMs).toBeGreaterThanOrEqual(48 * HOUR_MS);
    } finally {
      await ca.server.close(2000);
    }

    // Stopped (server-stop recorded), the CA no longer counts; the 25h certificate it issued does.
    const stopped = await root('activate');
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain(`a 25h certificate (serial ${long.serialNumber.toLowerCase()}) is valid until ${new Date(long.validTo).toISOString()}`);
    expect(safeFrom(stopped.stderr)).toBe(Date.parse(long.validTo));
    const status = JSON.parse((await root('status', '--json')).stdout);
    expect(status.nextStep).toMatchObject({ step: 'activate', allowedNow: false, allowedAt: new Date(long.validTo).toISOString() });

    const forced = await root('activate', '--force');
    expect(forced.code).toBe(0);

    // The old chain signed the 1h and the 25h certificate: retire waits for the later.
    const retire = await root('retire');
    expect(retire.code).toBe(1);
    expect(retire.stderr).toMatch(/^meshca root retire: refused: certificates from the old chain \(root [0-9a-f]{16}…\) can be valid until \S+ \(a 25h certificate/);
    expect(safeFrom(retire.stderr)).toBe(Date.parse(long.validTo));
    expect((await root('retire', '--force')).code).toBe(0);

    const ledger = await openLedger(db, { mustExist: true });
    const events = (await ledger.query({ type: 'ca', limit: 100, order: 'asc' })).map((r) => r.event as { event: string; detail: Record<string, unknown> });
    await ledger.close();
    expect(events.find((e) => e.event === 'server-start')!.detail).toMatchObject({ maxTtlSeconds: 48 * 3600, instance: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(events.find((e) => e.event === 'root-activate')!.detail.forced).toBe(true);
    expect(events.find((e) => e.event === 'root-retire')!.detail.forced).toBe(true);
    expect(preparedAtMs).toBeGreaterThan(0);
  }, 60_000);

  it('refuses activate without a ledger to read, unless forced', async () => {
    const keys2 = join(dir.path, 'keys2');
    expect((await meshca(['ca', 'init', '--keys', keys2])).code).toBe(0);
    expect((await meshca(['root', 'prepare', '--keys', keys2, '--db', 'memory:'])).code).toBe(0);
    const r = await meshca(['root', 'activate', '--keys', keys2, '--db', 'memory:']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`meshca root activate: refused: "root activate" reads what was issued from the CA's ledger, and --db memory: has none; pass the CA's --db, or --force to skip the safety wait\n`);
  }, 30_000);
});
