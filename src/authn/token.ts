// Bearer tokens: pulled from `authorization` metadata, summarised for the ledger by their hash.
// The token itself never leaves this module's callers' stack frames: not logged, not stored.

import { decodeJwt, type JWTPayload } from 'jose';
import { sha256Hex } from '../pki/index.ts';
import type { TokenFacts } from './types.ts';

/** Allowed clock skew between a token issuer and the CA. */
export const JWT_CLOCK_TOLERANCE_SECONDS = 30;

/** Biggest bearer token accepted; a projected service-account token is ~1 KiB. */
export const MAX_TOKEN_BYTES = 16 * 1024;

export function tokenSha256(token: string): string {
  return sha256Hex(token);
}

/** Short hash prefix for log lines: correlates requests without revealing the token. */
export function tokenLogId(token: string): string {
  return tokenSha256(token).slice(0, 12);
}

/** Reads `authorization: Bearer <token>`; undefined when absent or not a bearer credential. */
export function bearerTokenFrom(values: readonly unknown[]): string | undefined {
  for (const value of values) {
    if (typeof value !== 'string') continue;
    const m = /^Bearer[ \t]+(\S+)\s*$/i.exec(value);
    if (m) return m[1];
  }
  return undefined;
}

/** Record facts from the payload (unverified; callers only use them after verification). */
export function tokenFacts(token: string): TokenFacts {
  let payload: JWTPayload | undefined;
  try {
    payload = decodeJwt(token);
  } catch {
    // Not a JWT: the hash alone identifies it.
  }
  return tokenFactsOf(tokenSha256(token), payload);
}

/** The same facts from a payload already decoded (and verified) and the token's hex SHA-256. */
export function tokenFactsOf(sha256: string, payload: JWTPayload | undefined): TokenFacts {
  const facts: { sha256: string; jti?: string; iatMs?: number; expMs?: number } = { sha256 };
  if (typeof payload?.jti === 'string') facts.jti = payload.jti.slice(0, 128);
  if (typeof payload?.iat === 'number') facts.iatMs = payload.iat * 1000;
  if (typeof payload?.exp === 'number') facts.expMs = payload.exp * 1000;
  return facts;
}
