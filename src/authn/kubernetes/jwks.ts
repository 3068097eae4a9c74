// JWKS authenticator: verifies service-account tokens offline against the cluster issuer's keys
// (OIDC discovery → jose remote JWKS, refetched on an unknown kid), with no API call per token.
// It cannot know that a bound pod was deleted; only TokenReview can (see docs/kubernetes.md).

import { createRemoteJWKSet, customFetch, decodeJwt, decodeProtectedHeader, errors, type JWTPayload, type RemoteJWKSet } from 'jose';
import type { Logger } from '../../observability/index.ts';
import { SECOND_MS, type Clock } from '../../time/index.ts';
import { audienceList, JWT_ALGORITHMS, JWT_CLOCK_TOLERANCE_SECONDS } from '../jwt.ts';
import { createJwtVerifier, type JwtVerifier } from '../jwt_verify.ts';
import { callerFromKubernetesClaims } from '../kubernetes_claims.ts';
import { MAX_TOKEN_BYTES, tokenFactsOf, tokenLogId } from '../token.ts';
import type { Authenticator, AuthOutcome, AuthRequest, Caller } from '../types.ts';
import { discoverIssuer, type DiscoveredIssuer, type IssuerFetch } from './oidc.ts';
import { LEGACY_TOKEN_ISSUER, legacyRefusal } from './token_shape.ts';
import { describeError } from '../../errors/index.ts';

/** After a fetch, an unknown kid refetches the key set only once this long has passed. */
export const JWKS_REFETCH_COOLDOWN_MS = 10 * SECOND_MS;
/** Keys are refetched at least this often even when every kid is known. */
export const JWKS_MAX_AGE_MS = 10 * 60 * SECOND_MS;
/** A failed discovery is retried no sooner than this, so a storm does not hammer the issuer. */
const DISCOVERY_RETRY_MS = 5 * SECOND_MS;

/**
 * `undecided` carries what a JWKS-only deployment answers; `both` mode hands such tokens to
 * TokenReview instead.
 */
export type JwksVerdict =
  | { readonly kind: 'accepted'; readonly caller: Caller }
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'undecided'; readonly outcome: Extract<AuthOutcome, { ok: false }> };

export interface JwksVerifier {
  verify(token: string): Promise<JwksVerdict>;
}

export interface JwksVerifierOptions {
  /** Where discovery starts: --oidc-issuer, or the API server URL when it is not set. */
  readonly discoveryBase: string;
  /** True when discoveryBase is the configured issuer and the document must name it. */
  readonly requireIssuer: boolean;
  readonly audiences: readonly string[];
  readonly trustDomain: string;
  readonly fetchIssuer: IssuerFetch;
  readonly clock: Clock;
  readonly log: Logger;
  readonly refetchCooldownMs?: number;
}

function explain(err: unknown, audiences: readonly string[]): string {
  if (err instanceof errors.JWTExpired) return 'token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return `token audience does not include ${audienceList(audiences)}`;
    if (err.claim === 'nbf') return 'token is not valid yet (nbf is in the future)';
    return `token claim "${err.claim}" is invalid`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'token algorithm is not allowed (asymmetric signatures only)';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature does not verify (tampered or signed by another key)';
  return 'token is not a valid signed JWT';
}

function undecided(kind: 'skip' | 'refused' | 'unavailable', reason: string, retryAfterSeconds?: number): JwksVerdict {
  return { kind: 'undecided', outcome: { ok: false, kind, reason, ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) } };
}

export function createJwksVerifier(opts: JwksVerifierOptions): JwksVerifier {
  const { clock, log } = opts;
  const cooldownMs = opts.refetchCooldownMs ?? JWKS_REFETCH_COOLDOWN_MS;
  let discovered: { issuer: DiscoveredIssuer; keys: RemoteJWKSet; verifier: JwtVerifier } | undefined;
  let discovering: Promise<void> | undefined;
  let lastFailureMs = Number.NEGATIVE_INFINITY;

  function ensureDiscovered(): Promise<void> {
    if (discovered) return Promise.resolve();
    if (clock.now() - lastFailureMs < DISCOVERY_RETRY_MS) return Promise.reject(new Error('OIDC discovery failed recently'));
    discovering ??= discoverIssuer(opts.discoveryBase, opts.fetchIssuer, { requireIssuer: opts.requireIssuer })
      .then((issuer) => {
        const keys = createRemoteJWKSet(new URL(issuer.jwksUri), {
          cooldownDuration: cooldownMs,
          cacheMaxAge: JWKS_MAX_AGE_MS,
          [customFetch]: opts.fetchIssuer as never,
        });
        const verifier = createJwtVerifier(
          { issuer: issuer.issuer, audiences: opts.audiences, algorithms: JWT_ALGORITHMS, clockToleranceSeconds: JWT_CLOCK_TOLERANCE_SECONDS, requiredClaims: ['exp', 'sub'] },
          clock,
        );
        discovered = { issuer, keys, verifier };
        log.info({ issuer: issuer.issuer, jwksUri: issuer.jwksUri }, 'discovered the cluster service-account issuer');
      })
      .catch((err: unknown) => {
        lastFailureMs = clock.now();
        log.warn({ err: describeError(err) }, 'OIDC discovery of the service-account issuer failed');
        throw err;
      })
      .finally(() => (discovering = undefined));
    return discovering;
  }

  return {
    async verify(token: string): Promise<JwksVerdict> {
      let iss: unknown;
      try {
        if (decodeProtectedHeader(token).alg === 'none') return { kind: 'refused', reason: 'token is unsigned (alg "none")' };
        iss = decodeJwt(token).iss;
      } catch {
        return undecided('skip', 'bearer token is not a JWT');
      }
      if (iss === LEGACY_TOKEN_ISSUER) return undecided('refused', `${legacyRefusal(opts.audiences[0]!)}; legacy tokens can only be checked with --authn tokenreview or both`);
      try {
        await ensureDiscovered();
      } catch {
        return undecided('unavailable', 'the cluster service-account issuer (OIDC discovery) is unreachable', DISCOVERY_RETRY_MS / SECOND_MS);
      }
      const { issuer, keys, verifier } = discovered!;
      if (iss !== issuer.issuer) {
        return undecided('skip', `token issuer ${typeof iss === 'string' ? `"${iss.slice(0, 200)}"` : '(none)'} is not the cluster's service-account issuer`);
      }
      // jose refetches on an unknown kid unless it fetched within the cooldown; remember which.
      const couldRefetch = !keys.coolingDown;
      let payload: JWTPayload;
      let sha256: string;
      try {
        ({ payload, sha256 } = await verifier.verify(token, keys));
      } catch (err) {
        if (err instanceof errors.JWKSNoMatchingKey) {
          if (couldRefetch) return undecided('refused', 'token was signed by a key the issuer does not publish');
          return undecided('unavailable', 'token was signed by a key not yet fetched from the issuer', Math.ceil(cooldownMs / SECOND_MS));
        }
        // Anything that is not a verdict on the token (fetch failed, non-200, bad JWKS) is an outage.
        if (!(err instanceof errors.JOSEError) || err.code === 'ERR_JOSE_GENERIC' || err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) {
          return undecided('unavailable', 'the cluster issuer keys (JWKS) could not be fetched', 5);
        }
        log.info({ tokenId: tokenLogId(token), reason: explain(err, opts.audiences) }, 'JWKS verification refused the token');
        return { kind: 'refused', reason: explain(err, opts.audiences) };
      }
      const result = callerFromKubernetesClaims(payload, { trustDomain: opts.trustDomain, authenticator: 'jwks', token: tokenFactsOf(sha256, payload), nowMs: clock.now() });
      return result.ok ? { kind: 'accepted', caller: result.caller } : { kind: 'refused', reason: result.reason };
    },
  };
}

/**
 * `--authn jwks` (no fallback): an undecided token gets what JWKS alone can say. `--authn both`
 * (fallback = TokenReview): JWKS decides what it can (accept or refuse, no API call); a token it
 * cannot decide (unknown issuer, a kid it cannot resolve yet, a legacy token, issuer unreachable)
 * goes to TokenReview, with its cache, coalescing and rate limit.
 */
export function createJwksAuthenticator(verifier: JwksVerifier, fallback?: { tokenReview: Authenticator; log: Logger }): Authenticator {
  return {
    name: fallback ? 'kubernetes' : 'jwks',
    async authenticate(req: AuthRequest): Promise<AuthOutcome> {
      const token = req.bearerToken;
      if (!token) return { ok: false, kind: 'skip', reason: 'no bearer token' };
      if (token.length > MAX_TOKEN_BYTES) return { ok: false, kind: 'refused', reason: `token is longer than ${MAX_TOKEN_BYTES} bytes` };
      const verdict = await verifier.verify(token);
      if (verdict.kind === 'accepted') return { ok: true, caller: verdict.caller };
      if (verdict.kind === 'refused') return { ok: false, kind: 'refused', reason: verdict.reason };
      if (!fallback) return verdict.outcome;
      fallback.log.debug({ tokenId: tokenLogId(token), reason: verdict.outcome.reason }, 'JWKS cannot decide this token; asking TokenReview');
      return fallback.tokenReview.authenticate(req);
    },
  };
}
