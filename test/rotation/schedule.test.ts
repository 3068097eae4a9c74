// When rotation steps become safe, as pure functions of time, and the serve-side scheduler that
// rotates intermediates on its own, driven by a fake clock.

import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { initCa } from '../../src/ca/index.ts';
import { memoryLedger } from '../../src/ledger/index.ts';
import { createLogger, createRegistry } from '../../src/observability/index.ts';
import type { SigningAuthority } from '../../src/pki/index.ts';
import { trustBundleRoots } from '../../src/rotation/schedule.ts';
import {
  activationAllowedAtMs,
  authorityFromSnapshot,
  DirectoryKeyStore,
  intermediateScheduleAtMs,
  nextIntermediateStep,
  nextRootStep,
  prepareSlot,
  rotationPolicy,
  startRotationRuntime,
  type RotationRuntime,
  type RotationState,
} from '../../src/rotation/index.ts';
import { HOUR_MS, MINUTE_MS, systemClock } from '../../src/time/index.ts';
import { tempDir } from '../helpers/serve.ts';

const policy = rotationPolicy(HOUR_MS, 5000);
const cert = (keyId: string, notBeforeMs: number, notAfterMs: number, rootKeyId?: string) => ({
  keyId,
  subject: keyId,
  notBeforeMs,
  notAfterMs,
  hasKey: true,
  ...(rootKeyId ? { rootKeyId } : {}),
});

function stateAt(t0: number): RotationState {
  return {
    version: 3,
    updatedAtMs: t0,
    roots: [
      { state: 'active', cert: cert('aa', t0, t0 + 1000 * HOUR_MS), preparedAtMs: t0, activatedAtMs: t0 },
      { state: 'prepared', cert: cert('bb', t0 + HOUR_MS, t0 + 2000 * HOUR_MS), preparedAtMs: t0 + HOUR_MS },
    ],
    intermediates: [
      { state: 'active', cert: { ...cert('a1', t0, t0 + 90 * MINUTE_MS), rootKeyId: 'aa' }, preparedAtMs: t0, activatedAtMs: t0 },
      { state: 'prepared', cert: { ...cert('b1', t0 + HOUR_MS, t0 + 100 * HOUR_MS), rootKeyId: 'bb' }, preparedAtMs: t0 + HOUR_MS },
    ],
  };
}

describe('rotation schedule', () => {
  it('orders the trust bundle oldest first, a tie on notBefore in joining order, and keeps the order through activation', () => {
    const t0 = 1_800_000_000_000;
    // A root prepared within the second the first was made: same notBefore, and a key ID that sorts before it.
    const tied: RotationState = { ...stateAt(t0), roots: [{ state: 'active', cert: cert('zz', t0, t0 + 1000 * HOUR_MS), preparedAtMs: t0, activatedAtMs: t0 }, { state: 'prepared', cert: cert('aa', t0, t0 + 2000 * HOUR_MS), preparedAtMs: t0 }] };
    expect(trustBundleRoots(tied).map((s) => s.cert.keyId)).toEqual(['zz', 'aa']);
    const activated: RotationState = { ...tied, roots: [{ state: 'superseded', cert: tied.roots[0]!.cert, preparedAtMs: t0, activatedAtMs: t0, supersededAtMs: t0 + 1, maxLeafTtlMs: HOUR_MS }, { ...tied.roots[1]!, state: 'active', activatedAtMs: t0 + 1 }] };
    expect(trustBundleRoots(activated).map((s) => s.cert.keyId)).toEqual(['zz', 'aa']);
    // Otherwise oldest first, wherever a root sits in the state.
    const older: RotationState = { ...stateAt(t0), roots: [...stateAt(t0).roots].reverse() };
    expect(trustBundleRoots(older).map((s) => s.cert.keyId)).toEqual(['aa', 'bb']);
  });

  it('allows activation only once the new bundle has been out for the longest leaf lifetime plus the reload bound', () => {
    const t0 = 1_000_000_000_000;
    const s = stateAt(t0);
    const at = t0 + HOUR_MS + HOUR_MS + 5000;
    expect(activationAllowedAtMs(prepareSlot(s.roots[1]!.cert, t0 + HOUR_MS), policy)).toBe(at);
    expect(nextRootStep(s, at - 1, policy)).toMatchObject({ step: 'activate', keyId: 'bb', allowedAtMs: at });
    expect(nextRootStep(s, at - 1, policy).why).toMatch(/^wait 1s more/);
    expect(nextRootStep(s, at, policy).why).toMatch(/every workload trusts the new root/);
  });

  it('allows retirement once the last leaf of the old chain has expired, never later than its intermediates', () => {
    const t0 = 1_000_000_000_000;
    const s: RotationState = {
      ...stateAt(t0),
      roots: [
        { state: 'superseded', cert: cert('aa', t0, t0 + 1000 * HOUR_MS), preparedAtMs: t0, supersededAtMs: t0 + 10 * MINUTE_MS, maxLeafTtlMs: HOUR_MS },
        { state: 'active', cert: cert('bb', t0, t0 + 2000 * HOUR_MS), preparedAtMs: t0, activatedAtMs: t0 + 10 * MINUTE_MS },
      ],
    };
    // The old intermediate expires at 90 min, before 10 min + 5 s + 1 h would.
    expect(nextRootStep(s, t0, policy)).toMatchObject({ step: 'retire', keyId: 'aa', allowedAtMs: t0 + 70 * MINUTE_MS + 5000 });
    const longLived = { ...s, intermediates: s.intermediates.map((i) => ({ ...i, cert: { ...i.cert, notAfterMs: t0 + 1000 * HOUR_MS } })) };
    expect(nextRootStep(longLived, t0, rotationPolicy(2 * HOUR_MS, 5000)).allowedAtMs).toBe(t0 + 10 * MINUTE_MS + 5000 + 2 * HOUR_MS);
  });

  it('prepares a new intermediate at two thirds of its life and activates it at five sixths', () => {
    const t0 = 1_000_000_000_000;
    const s: RotationState = { ...stateAt(t0), roots: [stateAt(t0).roots[0]!], intermediates: [stateAt(t0).intermediates[0]!] };
    const { prepareAtMs, activateAtMs } = intermediateScheduleAtMs(s.intermediates[0]!.cert);
    expect(prepareAtMs).toBe(t0 + 60 * MINUTE_MS);
    expect(activateAtMs).toBe(t0 + 75 * MINUTE_MS);
    expect(nextIntermediateStep(s, prepareAtMs - 1, policy)).toEqual({ step: 'none' });
    expect(nextIntermediateStep(s, prepareAtMs, policy)).toEqual({ step: 'prepare', rootKeyId: 'aa' });
    const withPrepared: RotationState = {
      ...s,
      intermediates: [...s.intermediates, { state: 'prepared', cert: { ...cert('a2', prepareAtMs, t0 + 200 * MINUTE_MS), rootKeyId: 'aa' }, preparedAtMs: prepareAtMs }],
    };
    expect(nextIntermediateStep(withPrepared, activateAtMs - 1, policy)).toEqual({ step: 'none' });
    expect(nextIntermediateStep(withPrepared, activateAtMs, policy)).toEqual({ step: 'activate', keyId: 'a2' });
  });
});

describe('intermediate auto-rotation in serve', () => {
  const dirs: Array<{ cleanup: () => void }> = [];
  const runtimes: RotationRuntime[] = [];
  afterEach(() => {
    for (const r of runtimes.splice(0)) r.stop();
    for (const d of dirs.splice(0)) d.cleanup();
  });

  it('prepares, activates and clears away intermediates on schedule, swapping what the server signs with, and warns before expiry', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const keysDir = join(dir.path, 'keys');
    let now = Date.now();
    const clock = { ...systemClock, now: () => now };
    await initCa({ keysDir, trustDomain: 'cluster.local', organization: 't', keyType: 'ec-p256', rootTtlMs: 1000 * HOUR_MS, caTtlMs: 90 * MINUTE_MS, nowMs: now, force: false });
    const store = new DirectoryKeyStore(keysDir);
    const loaded = authorityFromSnapshot(store.snapshot(now), now);
    const swaps: SigningAuthority[] = [];
    const state = {
      authority: loaded.authority,
      update(a: SigningAuthority) {
        this.authority = a;
        swaps.push(a);
      },
    };
    const lines: string[] = [];
    const log = createLogger('info', new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
    const ledger = memoryLedger();
    const registry = createRegistry(false);
    let leading = true;
    const runtime = startRotationRuntime({
      store, state, startVersion: 0, clock, log, registry, ledger, policy: rotationPolicy(10 * MINUTE_MS, 5000),
      organization: 't', trustDomain: 'cluster.local', caTtlMs: 90 * MINUTE_MS, rootTtlMs: 1000 * HOUR_MS, keyType: 'ec-p256',
      autoRotateIntermediates: () => leading, pollMs: 3_600_000, checkMs: 3_600_000, caExpiryWarningMs: 20 * MINUTE_MS,
    });
    runtimes.push(runtime);
    const first = loaded.authority.keyId;
    await runtime.check();
    expect(swaps).toHaveLength(0);

    now += 61 * MINUTE_MS; // past two thirds: a new intermediate is due
    // A replica that does not hold the leader Lease leaves rotation to the one that does.
    leading = false;
    await runtime.check();
    expect(store.snapshot(now).state.intermediates.map((s) => s.state)).toEqual(['active']);
    leading = true;
    // The leader prepares it; nothing signs with it yet.
    await runtime.check();
    expect(state.authority.keyId).toBe(first);
    expect(store.snapshot(now).state.intermediates.map((s) => s.state)).toEqual(['active', 'prepared']);

    now += 15 * MINUTE_MS; // past five sixths: it signs
    await runtime.check();
    expect(state.authority.keyId).not.toBe(first);
    expect(store.snapshot(now).state.intermediates.map((s) => s.state)).toEqual(['superseded', 'active']);
    // The old one still vouches for mTLS renewals of the certificates it signed.

    now += 11 * MINUTE_MS; // its last leaf has expired: retired
    await runtime.check();
    expect(store.snapshot(now).state.intermediates.map((s) => s.state)).toEqual(['retired', 'active']);
    expect(ledger.events.filter((e) => e.type === 'ca').map((e) => (e as { event: string }).event)).toEqual(['intermediate-prepare', 'intermediate-activate']);
    expect(runtime.readiness()).toEqual({ ok: true });

    // Within the warning threshold of expiry: a log warning and a metric.
    now = state.authority.notAfterMs - 10 * MINUTE_MS;
    await runtime.check();
    expect(lines.join('')).toMatch(/the intermediate CA certificate expires in/);
    expect(await registry.getSingleMetricAsString('meshca_ca_cert_expiring')).toMatch(/cert="intermediate"} 1/);
    now = state.authority.notAfterMs + 1;
    expect(runtime.readiness()).toMatchObject({ ok: false, reason: expect.stringMatching(/the active intermediate expired/) });
  });
});
