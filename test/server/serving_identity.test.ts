// The CA's serving certificate: issued through SvidIssuer's pipeline (checked, recorded on the
// serving-cert channel), renewed by the shared engine at half-life and when the signing CA
// changes, and never handed out when the ledger cannot record it. Time is a fake clock.

import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SvidIssuer, type TtlPolicy } from '../../src/ca/index.ts';
import { memoryLedger } from '../../src/ledger/open.ts';
import type { LedgerEvent } from '../../src/ledger/index.ts';
import { CaState } from '../../src/server/index.ts';
import { SERVING_CERT_TTL_MS, ServingIdentity } from '../../src/server/serving_identity.ts';
import { FakeClock } from '../fakes/clock.ts';
import { makeTestAuthority } from '../helpers/test_ca.ts';

const TTL: TtlPolicy = { defaultTtlMs: 3_600_000, maxTtlMs: 86_400_000 };

async function setup(opts: { failLedger?: () => boolean } = {}) {
  const clock = new FakeClock(Math.floor(Date.now() / 1000) * 1000); // whole seconds, as X.509 times are
  const ca = await makeTestAuthority({ nowMs: clock.now() });
  const state = new CaState(ca.authority);
  const recorded = memoryLedger();
  const ledger = {
    append: async (e: LedgerEvent) => {
      if (opts.failLedger?.()) throw new Error('disk full');
      return recorded.append(e);
    },
  };
  const issuer = new SvidIssuer({ authority: () => state.authority, ledger: ledger as never, clock, ttl: TTL });
  const errors: unknown[] = [];
  const serving = new ServingIdentity({ issuer, state, dnsNames: ['meshca', 'localhost'], clock, random: () => 0.5, onError: (e) => errors.push(e) });
  const pushed: X509Certificate[] = [];
  serving.addIdentityCertificateListener((u) => void (u && pushed.push(new X509Certificate(u.certificate))));
  const records = () => recorded.events.filter((e) => e.type === 'issuance' && e.channel === 'serving-cert');
  return { clock, ca, state, serving, pushed, records, errors };
}

describe('ServingIdentity', () => {
  it('issues through the pipeline: a TLS server leaf of the intermediate, recorded on the serving-cert channel', async () => {
    const s = await setup();
    await s.serving.start();
    await s.clock.advance(0);
    const leaf = s.pushed[0]!;
    expect(leaf.checkIssued(s.ca.intermediate)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.subjectAltName).toContain('DNS:meshca');
    expect(leaf.subjectAltName).not.toContain('URI:');
    expect(s.records()).toEqual([
      expect.objectContaining({ decision: 'granted', channel: 'serving-cert', authenticator: 'self', serial: leaf.serialNumber.toLowerCase(), issuerKeyId: s.ca.authority.keyId, notAfterMs: s.clock.now() + SERVING_CERT_TTL_MS }),
    ]);
    s.serving.stop();
  });

  it('renews at half its life with a new key, and records each renewal', async () => {
    const s = await setup();
    await s.serving.start();
    await s.clock.advance(SERVING_CERT_TTL_MS / 2 - 1);
    expect(s.records()).toHaveLength(1);
    await s.clock.advance(1);
    expect(s.records()).toHaveLength(2);
    expect(s.pushed).toHaveLength(2);
    expect(s.pushed[1]!.publicKey.equals(s.pushed[0]!.publicKey)).toBe(false);
    s.serving.stop();
    await s.clock.advance(SERVING_CERT_TTL_MS);
    expect(s.records()).toHaveLength(2);
  });

  it('renews from the new intermediate as soon as the signing CA changes', async () => {
    const s = await setup();
    await s.serving.start();
    const next = await makeTestAuthority({ nowMs: s.clock.now() });
    s.state.update(next.authority);
    await s.clock.advance(0);
    expect(s.pushed.at(-1)!.checkIssued(next.intermediate)).toBe(true);
    expect(s.records().at(-1)).toMatchObject({ issuerKeyId: next.authority.keyId });
    s.serving.stop();
  });

  it('fails closed: no certificate when the ledger cannot record it, and retries with backoff while the old one serves', async () => {
    let failing = true;
    const s = await setup({ failLedger: () => failing });
    await expect(s.serving.start()).rejects.toThrow('disk full');
    expect(s.serving.notAfterMs).toBeUndefined();

    failing = false;
    const t = await setup({ failLedger: () => failing });
    await t.serving.start();
    const firstNotAfter = t.serving.notAfterMs;
    failing = true;
    await t.clock.advance(SERVING_CERT_TTL_MS / 2);
    expect(t.errors).toHaveLength(1);
    expect(t.serving.notAfterMs).toBe(firstNotAfter);
    failing = false;
    await t.clock.advance(1_000);
    expect(t.serving.notAfterMs).toBeGreaterThan(firstNotAfter!);
    t.serving.stop();
  });
});
