// Bearer JWT authenticator: verifies a service-account-shaped token with jose against a key set
// (a JWKS file, a JWKS URL, or meshca's development issuer), checking iss, aud, exp/nbf and the
// Kubernetes claim shape. Tokens from other issuers are skipped, not refused, so a chain can hold
// several issuers.

import { decodeJwt, decodeProtectedHeader, errors, type JWTVerifyGetKey } from 'jose';
import type { Clock } from '../time/index.ts';
import { createJwtVerifier } from './jwt_verify.ts';
import { callerFromKubernetesClaims } from './kubernetes_claims.ts';
import { JWT_CLOCK_TOLERANCE_SECONDS, MAX_TOKEN_BYTES, tokenFactsOf } from './token.ts';

export { JWT_CLOCK_TOLERANCE_SECONDS };
import type { Authenticator, AuthOutcome, AuthRequest } from './types.ts';

/** Asymmetric algorithms only: a shared-secret (HS*) or unsigned (none) token is never accepted. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

export interface JwtAuthenticatorOptions {
  readonly name: string;
  readonly issuer: string;
  /** Accepted audiences: the token must name at least one. */
  readonly audiences: readonly string[];
  readonly keySet: JWTVerifyGetKey;
  readonly trustDomain: string;
  readonly clock: Clock;
}

function explain(err: unknown, audiences: readonly string[]): string {
  if (err instanceof errors.JWTExpired) return 'token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return `token audience does not include ${audienceList(audiences)}`;
    if (err.claim === 'nbf') return 'token is not valid yet (nbf is in the future)';
    if (err.claim === 'iat') return 'token iat is in the future';
    if (err.claim === 'exp') return 'token has no valid exp claim';
    return `token claim "${err.claim}" is invalid`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'token algorithm is not allowed (asymmetric signatures only)';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature does not verify (tampered or signed by another key)';
  if (err instanceof errors.JWKSNoMatchingKey) return 'token was signed by a key the issuer does not publish';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return 'token issuer keys could not be fetched';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'token is not a valid signed JWT';
  return 'token could not be verified';
}

/** `"meshca"`, or `any of "meshca", "istio-ca"` for refusals. */
export function audienceList(audiences: readonly string[]): string {
  const quoted = audiences.map((a) => `"${a}"`);
  return quoted.length === 1 ? quoted[0]! : `any of ${quoted.join(', ')}`;
}

export function createJwtAuthenticator(opts: JwtAuthenticatorOptions): Authenticator {
  const verifier = createJwtVerifier(
    { issuer: opts.issuer, audiences: opts.audiences, algorithms: JWT_ALGORITHMS, clockToleranceSeconds: JWT_CLOCK_TOLERANCE_SECONDS, requiredClaims: ['exp', 'sub'] },
    opts.clock,
  );
  return {
    name: opts.name,
    async authenticate(req: AuthRequest): Promise<AuthOutcome> {
      const token = req.bearerToken;
      if (!token) return { ok: false, kind: 'skip', reason: 'no bearer token' };
      if (token.length > MAX_TOKEN_BYTES) return { ok: false, kind: 'refused', reason: `token is longer than ${MAX_TOKEN_BYTES} bytes` };
      let iss: unknown;
      try {
        const header = decodeProtectedHeader(token);
        if (header.alg === 'none') return { ok: false, kind: 'refused', reason: 'token is unsigned (alg "none")' };
        iss = decodeJwt(token).iss;
      } catch {
        return { ok: false, kind: 'skip', reason: 'bearer token is not a JWT' };
      }
      if (iss !== opts.issuer) {
        return { ok: false, kind: 'skip', reason: `token issuer ${typeof iss === 'string' ? `"${iss.slice(0, 200)}"` : '(none)'} is not trusted` };
      }
      let payload;
      let sha256: string;
      try {
        ({ payload, sha256 } = await verifier.verify(token, opts.keySet));
      } catch (err) {
        if (err instanceof errors.JWKSTimeout) return { ok: false, kind: 'unavailable', reason: explain(err, opts.audiences), retryAfterSeconds: 5 };
        return { ok: false, kind: 'refused', reason: explain(err, opts.audiences) };
      }
      const result = callerFromKubernetesClaims(payload, { trustDomain: opts.trustDomain, authenticator: opts.name, token: tokenFactsOf(sha256, payload), nowMs: opts.clock.now() });
      return result.ok ? result : { ok: false, kind: 'refused', reason: result.reason };
    },
  };
}
