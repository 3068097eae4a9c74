// When the agent renews and how it backs off, and the CSR it sends.

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, backoffDelayMs, renewAtMs } from '../../src/agent/index.ts';
import { createCsrPem, generateKeyPair, parseCsrPem } from '../../src/pki/index.ts';
import { scratchDir } from './harness.ts';

describe('renewal schedule', () => {
  it('renews between 45% and 55% of the lifetime counted from receipt, not the backdated notBefore', () => {
    const received = 1_000_000;
    const notBefore = received - 60_000;
    const notAfter = received + 10_000;
    expect(renewAtMs(received, notBefore, notAfter, 0)).toBe(received + 4_500);
    expect(renewAtMs(received, notBefore, notAfter, 0.5)).toBe(received + 5_000);
    expect(renewAtMs(received, notBefore, notAfter, 0.999999)).toBe(received + 5_500);
  });

  it('backs off exponentially from 500 ms to at most 60 s, with jitter', () => {
    expect(backoffDelayMs(1, 0.5)).toBe(BACKOFF_INITIAL_MS);
    expect(backoffDelayMs(2, 0.5)).toBe(1000);
    expect(backoffDelayMs(5, 0.5)).toBe(8000);
    expect(backoffDelayMs(30, 0.5)).toBe(BACKOFF_MAX_MS);
    expect(backoffDelayMs(30, 0.999)).toBe(BACKOFF_MAX_MS);
    expect(backoffDelayMs(3, 0)).toBeLessThan(backoffDelayMs(3, 0.99));
  });
});

describe('createCsrPem', () => {
  it('makes a CSR that openssl and our parser accept, for the key given', () => {
    const dir = scratchDir();
    try {
      for (const type of ['ec-p256', 'rsa-2048'] as const) {
        const { privateKey, publicKey } = generateKeyPair(type);
        const pem = createCsrPem(privateKey);
        expect(parseCsrPem(pem).publicKey.equals(publicKey)).toBe(true);
        writeFileSync(join(dir.path, `${type}.csr`), pem);
        expect(execFileSync('openssl', ['req', '-in', join(dir.path, `${type}.csr`), '-verify', '-noout'], { encoding: 'utf8', stdio: 'pipe' })).toBe('');
      }
    } finally {
      dir.cleanup();
    }
  });
});
