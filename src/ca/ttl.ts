// Lifetime rules for issued leaves: pure functions with named limits.

import { MeshcaError } from '../errors/index.ts';
import { formatDuration } from '../time/index.ts';
import { DEFAULT_LEAF_TTL_MS, DEFAULT_MAX_RENEWAL_AGE_MS, MAX_LEAF_TTL_MS, MIN_LEAF_TTL_MS } from './settings/index.ts';

/**
 * A renewal over mTLS may not extend the identity past `grantedAtMs + maxRenewalAgeMs`: the new leaf
 * ends by then at the latest, and once less than the shortest lifetime is left the caller must
 * present a fresh token, so a deleted pod's identity ends even though it holds a valid leaf.
 */
export function boundRenewalTtl(ttlMs: number, grantedAtMs: number, nowMs: number, maxRenewalAgeMs: number): number {
  const endMs = grantedAtMs + maxRenewalAgeMs;
  if (endMs - nowMs < MIN_LEAF_TTL_MS) {
    throw new MeshcaError(
      'UNAUTHENTICATED',
      `renewal over mTLS refused: this identity was last granted on a token at ${new Date(grantedAtMs).toISOString()}, and renewals end ` +
        `--max-renewal-age ${formatDuration(maxRenewalAgeMs)} after that; present a fresh token`,
    );
  }
  return Math.min(ttlMs, endMs - nowMs);
}

export interface TtlPolicy {
  readonly defaultTtlMs: number;
  readonly maxTtlMs: number;
}

/**
 * Istio sends validity_duration in seconds; 0 means "the CA's default". A request above the
 * maximum is refused, not clamped, so the caller learns the limit instead of a surprise lifetime.
 */
export function resolveTtl(requestedSeconds: number, policy: TtlPolicy): number {
  if (!Number.isFinite(requestedSeconds) || !Number.isInteger(requestedSeconds) || requestedSeconds < 0) {
    throw new MeshcaError('BAD_TTL', `requested TTL ${requestedSeconds}s is not a whole non-negative number of seconds`);
  }
  if (requestedSeconds === 0) return policy.defaultTtlMs;
  const ttlMs = requestedSeconds * 1000;
  if (ttlMs > policy.maxTtlMs) {
    throw new MeshcaError('BAD_TTL', `requested TTL ${formatDuration(ttlMs)} exceeds the maximum ${formatDuration(policy.maxTtlMs)}`);
  }
  if (ttlMs < MIN_LEAF_TTL_MS) {
    throw new MeshcaError('BAD_TTL', `requested TTL ${formatDuration(ttlMs)} is below the minimum ${formatDuration(MIN_LEAF_TTL_MS)}`);
  }
  return ttlMs;
}

export function validateTtlPolicy(policy: TtlPolicy): TtlPolicy {
  if (policy.maxTtlMs < MIN_LEAF_TTL_MS) throw new MeshcaError('BAD_CONFIG', `--max-ttl ${formatDuration(policy.maxTtlMs)} is below the minimum ${formatDuration(MIN_LEAF_TTL_MS)}`);
  if (policy.defaultTtlMs > policy.maxTtlMs) {
    throw new MeshcaError('BAD_CONFIG', `--default-ttl ${formatDuration(policy.defaultTtlMs)} exceeds --max-ttl ${formatDuration(policy.maxTtlMs)}`);
  }
  if (policy.defaultTtlMs < MIN_LEAF_TTL_MS) throw new MeshcaError('BAD_CONFIG', `--default-ttl ${formatDuration(policy.defaultTtlMs)} is below the minimum ${formatDuration(MIN_LEAF_TTL_MS)}`);
  return Object.freeze({ ...policy });
}
