// The PKCS#11 token against SoftHSM2: keys made inside the token sign what OpenSSL verifies; a
// pulled token fails closed with SIGNER_UNAVAILABLE and signing resumes once it is back.

import { verify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMeshcaError } from '../../src/errors/index.ts';
import { ecdsaRawToDer, openPkcs11Custody, parsePkcs11Uri, type Pkcs11Custody } from '../../src/pkcs11/index.ts';
import { isKeyReference } from '../../src/pki/index.ts';
import { FakeClock } from '../fakes/clock.ts';
import { createSoftHsm, pullableModule, SOFTHSM_MISSING, type SoftHsm } from './softhsm.ts';

describe('PKCS#11 URIs (RFC 7512)', () => {
  it('reads token, object, module-path and pin-source, percent-decoded', () => {
    const u = parsePkcs11Uri('pkcs11:token=mesh%20ca;object=inter;id=%01%ff?module-path=/usr/lib/x.so&pin-source=file:///run/pin');
    expect(u).toMatchObject({ token: 'mesh ca', object: 'inter', modulePath: '/usr/lib/x.so', pinSource: '/run/pin' });
    expect(u.id).toEqual(Buffer.from([1, 255]));
  });

  it('refuses a PIN in the URI, and a URI without token or object', () => {
    expect(() => parsePkcs11Uri('pkcs11:token=a;object=b?pin-value=1234')).toThrow(/pin-value is refused/);
    expect(() => parsePkcs11Uri('pkcs11:object=b')).toThrow(/token=<label> is missing/);
    expect(() => parsePkcs11Uri('pkcs11:token=a')).toThrow(/object=<key label> is missing/);
    expect(() => parsePkcs11Uri('file:/x')).toThrow(/must start with pkcs11:/);
  });

  it('turns r‖s into an ECDSA-Sig-Value with minimal positive integers', () => {
    const raw = Buffer.concat([Buffer.alloc(31, 0).fill(0x80, 0, 1), Buffer.from([1]), Buffer.concat([Buffer.alloc(1, 0), Buffer.alloc(31, 0x7f)])]);
    const der = ecdsaRawToDer(raw);
    expect(der[0]).toBe(0x30);
    expect(der[2]).toBe(0x02);
  });
});

describe.skipIf(SOFTHSM_MISSING)(`PKCS#11 token on SoftHSM2${SOFTHSM_MISSING ? ` (skipped: ${SOFTHSM_MISSING})` : ''}`, () => {
  let hsm: SoftHsm;
  let pull: (pulled: boolean) => void = () => {};
  let custody: Pkcs11Custody;
  const clock = new FakeClock(Date.now());

  beforeAll(async () => {
    hsm = createSoftHsm(['meshca-test']);
    const module = pullableModule(hsm.modulePath);
    pull = module.pull;
    const api = module.api;
    custody = openPkcs11Custody(hsm.signerUri('meshca-test'), { clock, api });
  });
  afterAll(() => {
    custody?.close();
    hsm?.cleanup();
  });

  it('makes a P-256 key in the token and signs what the public key verifies', async () => {
    const { key, publicKey } = await custody.generate('ec-p256');
    expect(isKeyReference(key)).toBe(true);
    expect(isKeyReference(key) && key.uri).toMatch(/^pkcs11:token=meshca-test;object=meshca-intermediate;id=(%[0-9a-f]{2}){16};type=private$/);
    const signer = custody.signerFor(key);
    const data = Buffer.from('tbsCertificate');
    const sig = await signer.sign(data);
    expect(verify('sha256', data, publicKey, sig)).toBe(true);
    expect(signer.publicKey.export({ format: 'der', type: 'spki' })).toEqual(publicKey.export({ format: 'der', type: 'spki' }));
  });

  it('signs with P-384 and RSA keys too', async () => {
    for (const keyType of ['ec-p384', 'rsa-2048'] as const) {
      const { key, publicKey } = await custody.generate(keyType);
      const data = Buffer.from(`data for ${keyType}`);
      expect(verify(keyType === 'ec-p384' ? 'sha384' : 'sha256', data, publicKey, await custody.signerFor(key).sign(data)), keyType).toBe(true);
    }
  });

  it('fails closed while the token is pulled (SIGNER_UNAVAILABLE, readiness false) and signs again once it is back', async () => {
    const { key, publicKey } = await custody.generate('ec-p256');
    const signer = custody.signerFor(key);
    pull(true);
    const err = await signer.sign(Buffer.from('x')).catch((e: unknown) => e);
    expect(isMeshcaError(err, 'SIGNER_UNAVAILABLE')).toBe(true);
    expect(custody.readiness()).toMatchObject({ ok: false, reason: expect.stringMatching(/signing token is unavailable/) });
    pull(false);
    // Reopening waits REOPEN_INTERVAL_MS after the last attempt.
    expect(custody.readiness().ok).toBe(false);
    await clock.advance(1_000);
    expect(custody.readiness()).toEqual({ ok: true });
    const data = Buffer.from('after');
    expect(verify('sha256', data, publicKey, await signer.sign(data))).toBe(true);
  });
});
