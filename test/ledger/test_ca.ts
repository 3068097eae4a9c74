// A throwaway CA, a ledger key and a fake clock for ledger and audit tests: real keys, real certificates.

import { generateKeyPairSync } from 'node:crypto';
import { systemClock, type Clock } from '../../src/time/index.ts';
import { makeTestAuthority as makeSharedTestAuthority, type TestAuthority } from '../helpers/test_ca.ts';
import { ledgerKeyFrom, type LedgerKey } from '../../src/ledger/index.ts';

export const T0 = Date.UTC(2030, 0, 1);

export interface FakeClock extends Clock {
  set(ms: number): void;
  advance(ms: number): void;
}

export function fakeClock(start = T0): FakeClock {
  let t = start;
  return { ...systemClock, now: () => t, set: (ms) => void (t = ms), advance: (ms) => void (t += ms) };
}

export type { TestAuthority } from '../helpers/test_ca.ts';

/** The shared test CA, made at the ledger tests' fixed time by default. */
export function makeTestAuthority(nowMs = T0): Promise<TestAuthority> {
  return makeSharedTestAuthority({ nowMs });
}

export function makeLedgerKey(): LedgerKey {
  return ledgerKeyFrom(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
}
