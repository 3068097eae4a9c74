// What an unverified look at a bearer token tells us before any API call: is it a JWT, a legacy
// secret-based service-account token, or a bound one (with its aud and exp)? Never a verdict on
// its own: these facts only let us refuse early, never accept.

import { decodeJwt } from 'jose';

/** The issuer kube-apiserver writes into secret-based (legacy) service-account tokens. */
export const LEGACY_TOKEN_ISSUER = 'kubernetes/serviceaccount';

export const LEGACY_TOKEN_REFUSAL =
  'legacy secret-based service-account token refused: it has no expiry and no audience; mount a projected ' +
  'service-account token with audience "%AUD%" (or start the CA with --allow-legacy-tokens)';

export type TokenShape =
  | { readonly kind: 'not-jwt' }
  | { readonly kind: 'legacy'; readonly iss?: string }
  | { readonly kind: 'bound'; readonly iss?: string; readonly aud: readonly string[]; readonly expMs?: number };

export function tokenShapeOf(token: string): TokenShape {
  let payload;
  try {
    payload = decodeJwt(token);
  } catch {
    return { kind: 'not-jwt' };
  }
  const iss = typeof payload.iss === 'string' ? payload.iss : undefined;
  const aud = Array.isArray(payload.aud) ? payload.aud : typeof payload.aud === 'string' ? [payload.aud] : [];
  if (iss === LEGACY_TOKEN_ISSUER || (payload.exp === undefined && aud.length === 0)) return { kind: 'legacy', ...(iss ? { iss } : {}) };
  return { kind: 'bound', ...(iss ? { iss } : {}), aud, ...(typeof payload.exp === 'number' ? { expMs: payload.exp * 1000 } : {}) };
}

export function legacyRefusal(audience: string): string {
  return LEGACY_TOKEN_REFUSAL.replace('%AUD%', audience);
}
