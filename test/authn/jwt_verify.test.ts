// The hot-path JWT verifier must answer exactly as jose's jwtVerify does (same acceptances, same
// error classes and claims), check a token's signature once, and still refuse a cached token once
// its claims fail (expiry) or its cache entry ages out.

import { generateKeyPairSync } from 'node:crypto';
import { createLocalJWKSet, errors, exportJWK, SignJWT, type JWK, type JWTVerifyGetKey } from 'jose';
import { describe, expect, it } from 'vitest';
import { createJwtVerifier, type JwtClaimRules } from '../../src/authn/jwt_verify.ts';
import { JWT_ALGORITHMS } from '../../src/authn/jwt.ts';
import { tokenSha256 } from '../../src/authn/token.ts';
import { FakeClock } from '../fakes/clock.ts';

const ISSUER = 'https://issuer.example';
const RULES: JwtClaimRules = { issuer: ISSUER, audiences: ['meshca', 'istio-ca'], algorithms: JWT_ALGORITHMS, clockToleranceSeconds: 30, requiredClaims: ['exp', 'sub'] };

type Kind = 'rsa' | 'ec-p256' | 'ec-p384' | 'ed25519';
const ALG: Record<Kind, string> = { rsa: 'RS256', 'ec-p256': 'ES256', 'ec-p384': 'ES384', ed25519: 'EdDSA' };

function keyPair(kind: Kind) {
  if (kind === 'rsa') return generateKeyPairSync('rsa', { modulusLength: 2048 });
  if (kind === 'ed25519') return generateKeyPairSync('ed25519');
  return generateKeyPairSync('ec', { namedCurve: kind === 'ec-p256' ? 'P-256' : 'P-384' });
}

async function issuer(kind: Kind, kid = 'k1') {
  const { privateKey, publicKey } = keyPair(kind);
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: ALG[kind] };
  let lookups = 0;
  const local = createLocalJWKSet({ keys: [jwk] });
  const keySet: JWTVerifyGetKey = (header, token) => {
    lookups++;
    return local(header, token);
  };
  const mint = (claims: Record<string, unknown>, opts: { nowS: number }) =>
    new SignJWT({ iss: ISSUER, aud: 'meshca', sub: 'system:serviceaccount:ns:sa', iat: opts.nowS, exp: opts.nowS + 600, ...claims }).setProtectedHeader({ alg: ALG[kind], kid }).sign(privateKey);
  return { keySet, mint, lookups: () => lookups };
}

async function refusal(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe('hot-path JWT verification', () => {
  it.each(['rsa', 'ec-p256', 'ec-p384', 'ed25519'] as const)('accepts a valid %s-signed token and returns its claims', async (kind) => {
    const clock = new FakeClock();
    const iss = await issuer(kind);
    const token = await iss.mint({ jti: 'one' }, { nowS: clock.now() / 1000 });
    const { payload, protectedHeader, sha256 } = await createJwtVerifier(RULES, clock).verify(token, iss.keySet);
    expect(payload.jti).toBe('one');
    expect(sha256).toBe(tokenSha256(token));
    expect(protectedHeader.alg).toBe(ALG[kind]);
  });

  it('checks a token signature once: the second presentation does not look up the key again', async () => {
    const clock = new FakeClock();
    const iss = await issuer('rsa');
    const verifier = createJwtVerifier(RULES, clock);
    const token = await iss.mint({}, { nowS: clock.now() / 1000 });
    await verifier.verify(token, iss.keySet);
    await verifier.verify(token, iss.keySet);
    expect(iss.lookups()).toBe(1);
  });

  it('refuses a cached token once it has expired (claims are checked on every call)', async () => {
    const clock = new FakeClock();
    const iss = await issuer('ec-p256');
    const verifier = createJwtVerifier(RULES, clock);
    const token = await iss.mint({}, { nowS: clock.now() / 1000 });
    await verifier.verify(token, iss.keySet);
    await clock.advance(631_000);
    const err = await refusal(verifier.verify(token, iss.keySet));
    expect(err).toBeInstanceOf(errors.JWTExpired);
  });

  it('checks the signature again once the cache entry is older than its limit', async () => {
    const clock = new FakeClock();
    const iss = await issuer('rsa');
    const verifier = createJwtVerifier(RULES, clock, { maxAgeMs: 60_000 });
    const token = await iss.mint({}, { nowS: clock.now() / 1000 });
    await verifier.verify(token, iss.keySet);
    await clock.advance(61_000);
    await verifier.verify(token, iss.keySet);
    expect(iss.lookups()).toBe(2);
  });

  it('refuses a tampered payload with JWSSignatureVerificationFailed and caches nothing', async () => {
    const clock = new FakeClock();
    const iss = await issuer('rsa');
    const verifier = createJwtVerifier(RULES, clock);
    const token = await iss.mint({}, { nowS: clock.now() / 1000 });
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: 'system:serviceaccount:kube-system:admin' })).toString('base64url')}.${s}`;
    expect(await refusal(verifier.verify(forged, iss.keySet))).toBeInstanceOf(errors.JWSSignatureVerificationFailed);
    expect(await refusal(verifier.verify(forged, iss.keySet))).toBeInstanceOf(errors.JWSSignatureVerificationFailed);
  });

  it('refuses a token signed by another key with the same kid', async () => {
    const clock = new FakeClock();
    const published = await issuer('ec-p256');
    const impostor = await issuer('ec-p256');
    const token = await impostor.mint({}, { nowS: clock.now() / 1000 });
    expect(await refusal(createJwtVerifier(RULES, clock).verify(token, published.keySet))).toBeInstanceOf(errors.JWSSignatureVerificationFailed);
  });

  it.each([
    ['a wrong audience', { aud: 'someone-else' }, 'aud'],
    ['a wrong issuer', { iss: 'https://evil.example' }, 'iss'],
    ['nbf in the future beyond the tolerance', { nbf: 10_000_000_000 }, 'nbf'],
    ['a non-numeric iat', { iat: 'yesterday' }, 'iat'],
  ])('refuses %s with JWTClaimValidationFailed naming the claim', async (_what, claims, claim) => {
    const clock = new FakeClock();
    const iss = await issuer('rsa');
    const nowS = clock.now() / 1000;
    const token = await iss.mint(claims, { nowS });
    const err = await refusal(createJwtVerifier(RULES, clock).verify(token, iss.keySet));
    expect(err).toBeInstanceOf(errors.JWTClaimValidationFailed);
    expect((err as errors.JWTClaimValidationFailed).claim).toBe(claim);
  });

  it('refuses a token without the required sub claim', async () => {
    const clock = new FakeClock();
    const iss = await issuer('rsa');
    const token = await iss.mint({ sub: undefined }, { nowS: clock.now() / 1000 });
    const err = await refusal(createJwtVerifier(RULES, clock).verify(token, iss.keySet));
    expect((err as errors.JWTClaimValidationFailed).claim).toBe('sub');
  });

  it('refuses an algorithm outside the allowed list and an unsigned token as jose does', async () => {
    const clock = new FakeClock();
    const iss = await issuer('rsa');
    const nowS = clock.now() / 1000;
    const hs = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setIssuer(ISSUER).setAudience('meshca').setExpirationTime(nowS + 60).sign(new Uint8Array(32));
    expect(await refusal(createJwtVerifier(RULES, clock).verify(hs, iss.keySet))).toBeInstanceOf(errors.JOSEAlgNotAllowed);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: ISSUER, aud: 'meshca', sub: 'x', exp: nowS + 60 })).toString('base64url')}.`;
    expect(await refusal(createJwtVerifier(RULES, clock).verify(none, iss.keySet))).toBeInstanceOf(errors.JOSEAlgNotAllowed);
  });

  it('never verifies an ES256 header against a P-384 key (the key must fit the algorithm)', async () => {
    const clock = new FakeClock();
    const { privateKey, publicKey } = keyPair('ec-p384');
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1' };
    const keySet = createLocalJWKSet({ keys: [jwk] });
    const nowS = clock.now() / 1000;
    const token = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'ES384', kid: 'k1' }).setIssuer(ISSUER).setAudience('meshca').setExpirationTime(nowS + 60).sign(privateKey);
    const [, p, s] = token.split('.');
    const relabelled = `${Buffer.from('{"alg":"ES256","kid":"k1"}').toString('base64url')}.${p}.${s}`;
    const err = await refusal(createJwtVerifier(RULES, clock).verify(relabelled, keySet));
    expect(err).toBeInstanceOf(errors.JOSEError);
  });
});
