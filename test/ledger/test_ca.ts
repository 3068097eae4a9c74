// A throwaway CA, a CSR and a fake clock for ledger and audit tests: real keys, real certificates.

import { generateKeyPairSync } from 'node:crypto';
import { createIntermediateCa, createLocalSigner, createRootCa, loadSigningAuthority, toPem, type SigningAuthority } from '../../src/pki/index.ts';
import { DAY_MS, type Clock } from '../../src/time/index.ts';
import { ledgerKeyFrom, type LedgerKey } from '../../src/ledger/index.ts';

export const T0 = Date.UTC(2030, 0, 1);

export interface FakeClock extends Clock {
  set(ms: number): void;
  advance(ms: number): void;
}

export function fakeClock(start = T0): FakeClock {
  let t = start;
  return { now: () => t, set: (ms) => void (t = ms), advance: (ms) => void (t += ms) };
}

export interface TestAuthority {
  authority: SigningAuthority;
  rootPem: string;
  intermediatePem: string;
  intermediateKeyPem: string;
}

export async function makeTestAuthority(nowMs = T0): Promise<TestAuthority> {
  const base = { trustDomain: 'cluster.local', organization: 'test', keyType: 'ec-p256' as const, nowMs };
  const root = await createRootCa({ ...base, ttlMs: 3650 * DAY_MS });
  const inter = await createIntermediateCa({ ...base, ttlMs: 365 * DAY_MS, rootCertificateDer: root.certificateDer, rootSigner: createLocalSigner(root.privateKey), rootNotAfterMs: nowMs + 3650 * DAY_MS });
  const rootPem = toPem(root.certificateDer, 'CERTIFICATE');
  const intermediatePem = toPem(inter.certificateDer, 'CERTIFICATE');
  return {
    authority: loadSigningAuthority({ chainPem: intermediatePem, rootsPem: rootPem, signer: createLocalSigner(inter.privateKey), nowMs }),
    rootPem,
    intermediatePem,
    intermediateKeyPem: inter.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
  };
}

export function makeLedgerKey(): LedgerKey {
  return ledgerKeyFrom(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
}
