// JWT verification on the issuance hot path: the signature checked synchronously with node:crypto
// and the issuer's key as a cached KeyObject (jose's WebCrypto round trip cost ~13% of serve under
// load), and a token whose signature verified once is remembered by its SHA-256 so a retry or a
// renewal with the same token is not verified again. Claims (iss, aud, exp, nbf) are checked on
// every call, with jose's rules and jose's error classes, so callers explain failures as before.
// Anything unusual (crit, b64, a key that does not fit the algorithm) goes to jose's jwtVerify.

import { createHash, KeyObject, verify as verifySignature, constants } from 'node:crypto';
import { errors, jwtVerify, type JWTHeaderParameters, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { MINUTE_MS, type Clock } from '../time/index.ts';

/** How long a verified signature is trusted without checking it again (claims are checked every time). */
export const VERIFIED_TOKEN_MAX_AGE_MS = 5 * MINUTE_MS;
/** Verified tokens remembered; the oldest is forgotten first. */
export const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

export interface JwtClaimRules {
  readonly issuer: string;
  /** The token must name at least one of these in aud. */
  readonly audiences: readonly string[];
  readonly algorithms: readonly string[];
  readonly clockToleranceSeconds: number;
  readonly requiredClaims: readonly string[];
}

export interface VerifiedJwt {
  readonly payload: JWTPayload;
  readonly protectedHeader: JWTHeaderParameters;
  /** Hex SHA-256 of the token: its id in the ledger and the cache. */
  readonly sha256: string;
}

export interface JwtVerifier {
  /** Resolves like jose's jwtVerify; rejects with jose's error classes. */
  verify(token: string, keySet: JWTVerifyGetKey): Promise<VerifiedJwt>;
}

interface Cached {
  readonly jwt: VerifiedJwt;
  readonly untilMs: number;
}

interface Algorithm {
  readonly hash: string | null;
  readonly keyTypes: readonly string[];
  readonly curve?: string;
  readonly pss?: boolean;
  readonly ecdsa?: boolean;
}

const ALGORITHMS: Record<string, Algorithm> = {
  RS256: { hash: 'sha256', keyTypes: ['rsa'] },
  RS384: { hash: 'sha384', keyTypes: ['rsa'] },
  RS512: { hash: 'sha512', keyTypes: ['rsa'] },
  PS256: { hash: 'sha256', keyTypes: ['rsa', 'rsa-pss'], pss: true },
  PS384: { hash: 'sha384', keyTypes: ['rsa', 'rsa-pss'], pss: true },
  PS512: { hash: 'sha512', keyTypes: ['rsa', 'rsa-pss'], pss: true },
  ES256: { hash: 'sha256', keyTypes: ['ec'], curve: 'prime256v1', ecdsa: true },
  ES384: { hash: 'sha384', keyTypes: ['ec'], curve: 'secp384r1', ecdsa: true },
  ES512: { hash: 'sha512', keyTypes: ['ec'], curve: 'secp521r1', ecdsa: true },
  EdDSA: { hash: null, keyTypes: ['ed25519', 'ed448'] },
};
const PSS_SALT_BYTES: Record<string, number> = { sha256: 32, sha384: 48, sha512: 64 };
/** jose refuses RSA keys shorter than this; so do we. */
const MIN_RSA_BITS = 2048;

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function keyFits(key: KeyObject, alg: Algorithm): boolean {
  if (key.type !== 'public' || !alg.keyTypes.includes(key.asymmetricKeyType ?? '')) return false;
  const details = key.asymmetricKeyDetails;
  if (alg.curve !== undefined && details?.namedCurve !== alg.curve) return false;
  if (key.asymmetricKeyType?.startsWith('rsa') && (details?.modulusLength ?? 0) < MIN_RSA_BITS) return false;
  return true;
}

function claimFailed(message: string, payload: JWTPayload, claim: string, reason = 'check_failed'): never {
  throw new errors.JWTClaimValidationFailed(message, payload, claim, reason);
}

function numericDate(payload: JWTPayload, claim: 'iat' | 'nbf' | 'exp'): number | undefined {
  const value = payload[claim];
  if (value === undefined) return undefined;
  if (typeof value !== 'number') claimFailed(`"${claim}" claim must be a number`, payload, claim, 'invalid');
  return value;
}

/** jose's validateClaimsSet for the options meshca uses (issuer, audience, requiredClaims, clockTolerance). */
function checkClaims(payload: JWTPayload, rules: JwtClaimRules, nowMs: number): void {
  for (const claim of new Set(['iss', 'aud', ...[...rules.requiredClaims].reverse()])) {
    if (!Object.hasOwn(payload, claim)) claimFailed(`missing required "${claim}" claim`, payload, claim, 'missing');
  }
  if (payload.iss !== rules.issuer) claimFailed('unexpected "iss" claim value', payload, 'iss');
  const aud = payload.aud;
  if (!(typeof aud === 'string' ? rules.audiences.includes(aud) : Array.isArray(aud) && rules.audiences.some((a) => aud.includes(a)))) claimFailed('unexpected "aud" claim value', payload, 'aud');
  const now = Math.floor(nowMs / 1000);
  numericDate(payload, 'iat');
  const nbf = numericDate(payload, 'nbf');
  if (nbf !== undefined && nbf > now + rules.clockToleranceSeconds) claimFailed('"nbf" claim timestamp check failed', payload, 'nbf');
  const exp = numericDate(payload, 'exp');
  if (exp !== undefined && exp <= now - rules.clockToleranceSeconds) throw new errors.JWTExpired('"exp" claim timestamp check failed', payload, 'exp', 'check_failed');
}

export function createJwtVerifier(rules: JwtClaimRules, clock: Clock, opts: { cacheSize?: number; maxAgeMs?: number } = {}): JwtVerifier {
  const cacheSize = opts.cacheSize ?? VERIFIED_TOKEN_CACHE_SIZE;
  const maxAgeMs = opts.maxAgeMs ?? VERIFIED_TOKEN_MAX_AGE_MS;
  const verified = new Map<string, Cached>();
  const keyObjects = new WeakMap<object, KeyObject>();
  /** Which algorithms each key was found to fit (reading a key's details costs as much as a hash). */
  const fits = new WeakMap<KeyObject, Map<Algorithm, boolean>>();

  function keyFitsCached(key: KeyObject, alg: Algorithm): boolean {
    let known = fits.get(key);
    if (!known) fits.set(key, (known = new Map()));
    let fit = known.get(alg);
    if (fit === undefined) known.set(alg, (fit = keyFits(key, alg)));
    return fit;
  }

  function keyObjectOf(key: unknown): KeyObject | undefined {
    if (key instanceof KeyObject) return key;
    if (key === null || typeof key !== 'object' || !(key instanceof globalThis.CryptoKey)) return undefined;
    let ko = keyObjects.get(key);
    if (!ko) keyObjects.set(key, (ko = KeyObject.from(key)));
    return ko;
  }

  function remember(hash: string, jwt: VerifiedJwt, nowMs: number): void {
    const exp = typeof jwt.payload.exp === 'number' ? jwt.payload.exp * 1000 : nowMs;
    if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!);
    verified.set(hash, { jwt, untilMs: Math.min(exp, nowMs + maxAgeMs) });
  }

  async function verifyUncached(token: string, sha256: string, keySet: JWTVerifyGetKey): Promise<VerifiedJwt> {
    const parts = token.split('.');
    const header = parts.length === 3 ? decodeJson(parts[0]!) : undefined;
    const payload = parts.length === 3 ? decodeJson(parts[1]!) : undefined;
    const alg = typeof header?.alg === 'string' && Object.hasOwn(ALGORITHMS, header.alg) ? ALGORITHMS[header.alg] : undefined;
    const plain = header !== undefined && payload !== undefined && alg !== undefined && header.crit === undefined && header.b64 === undefined;
    if (!plain || !rules.algorithms.includes(header.alg as string)) return jwtVerifyWithJose(token, sha256, keySet);
    const key = keyObjectOf(await keySet(header as JWTHeaderParameters, { payload: parts[1]!, signature: parts[2]!, protected: parts[0]! }));
    if (!key || !keyFitsCached(key, alg)) return jwtVerifyWithJose(token, sha256, keySet);
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2]!, 'base64url');
    const ok = verifySignature(
      alg.hash,
      signed,
      alg.pss ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_BYTES[alg.hash!]! } : alg.ecdsa ? { key, dsaEncoding: 'ieee-p1363' } : key,
      signature,
    );
    if (!ok) throw new errors.JWSSignatureVerificationFailed();
    return { payload: payload as JWTPayload, protectedHeader: header as JWTHeaderParameters, sha256 };
  }

  async function jwtVerifyWithJose(token: string, sha256: string, keySet: JWTVerifyGetKey): Promise<VerifiedJwt> {
    const { payload, protectedHeader } = await jwtVerify(token, keySet, {
      issuer: rules.issuer,
      audience: [...rules.audiences],
      algorithms: [...rules.algorithms],
      clockTolerance: rules.clockToleranceSeconds,
      currentDate: new Date(clock.now()),
      requiredClaims: [...rules.requiredClaims],
    });
    return { payload, protectedHeader, sha256 };
  }

  return {
    async verify(token, keySet) {
      const hash = createHash('sha256').update(token).digest('hex');
      const nowMs = clock.now();
      const hit = verified.get(hash);
      if (hit && hit.untilMs > nowMs) {
        checkClaims(hit.jwt.payload, rules, nowMs);
        return hit.jwt;
      }
      if (hit) verified.delete(hash);
      const jwt = await verifyUncached(token, hash, keySet);
      checkClaims(jwt.payload, rules, nowMs);
      remember(hash, jwt, nowMs);
      return jwt;
    },
  };
}
