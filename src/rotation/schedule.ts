// When to rotate: pure functions of the stored state, the time and the policy (SPIRE's rotator).
// They decide nothing about files or keys; the operations (the manager) do what these allow.

import { formatDuration, SECOND_MS } from '../time/index.ts';
import type { IssuedFacts } from './facts.ts';
import { activeSlotOf, isTrusted, slotsIn, type PreparedSlot, type SupersededSlot } from './slots.ts';
import { intermediatesUnder, type IntermediateCertificate, type RootCertificate, type RootSlot, type RotationState } from './state.ts';

/** docs/architecture.md, "Defaults": every running serve picks up a key store change within this long. */
export const RELOAD_BOUND_MS = 5 * SECOND_MS;
/** A new intermediate is prepared once the current one has used this much of its life… */
export const INTERMEDIATE_PREPARE_AT = 2 / 3;
/** …and made active here, leaving a sixth of the old one's life as margin. */
export const INTERMEDIATE_ACTIVATE_AT = 5 / 6;

export interface RotationPolicy {
  /** The longest leaf lifetime a running CA grants: how long a bundle needs to reach everyone. */
  readonly maxLeafTtlMs: number;
  /** How long until every serve sharing the key store follows a change. */
  readonly reloadBoundMs: number;
  /** What the ledger says was issued (facts.ts); absent when no ledger was read. */
  readonly issued?: IssuedFacts;
  /** Where maxLeafTtlMs comes from, for refusals ("the CA started … grants up to 48h"). */
  readonly maxTtlSource?: string;
}

export function rotationPolicy(maxLeafTtlMs: number, reloadBoundMs = RELOAD_BOUND_MS, facts: { issued?: IssuedFacts; maxTtlSource?: string } = {}): RotationPolicy {
  return Object.freeze({ maxLeafTtlMs, reloadBoundMs, ...facts });
}

/**
 * A prepared root may sign once its bundle has been out for a whole leaf lifetime: every workload
 * renews within one, and each renewal brings the new bundle, so by then every peer trusts it. A
 * certificate issued before that with the old bundle and living longer (the ledger knows) holds it off.
 */
export function activationAllowedAtMs(prepared: PreparedSlot<RootCertificate>, policy: RotationPolicy): number {
  return Math.max(prepared.preparedAtMs + policy.reloadBoundMs + policy.maxLeafTtlMs, policy.issued?.oldBundle?.notAfterMs ?? 0);
}

/**
 * Until when anything a superseded root's chain signed can still be valid: the last leaf was issued
 * at most reloadBound after it stopped signing and lives at most the longest TTL a running CA
 * grants, and no leaf outlives its intermediate; a leaf the ledger shows living longer holds it off.
 */
export function leavesValidUntilMs(state: RotationState, root: SupersededSlot<RootCertificate>, policy: RotationPolicy): number {
  const lastLeafMs = root.supersededAtMs + policy.reloadBoundMs + Math.max(root.maxLeafTtlMs, policy.maxLeafTtlMs);
  const intermediates = intermediatesUnder(state, root.cert.keyId);
  const latestIssuerMs = intermediates.length > 0 ? Math.max(...intermediates.map((s) => s.cert.notAfterMs)) : lastLeafMs;
  return Math.max(Math.min(lastLeafMs, latestIssuerMs), policy.issued?.oldChain?.notAfterMs ?? 0);
}

/** Until when leaves of a superseded intermediate can be valid. */
export function intermediateLeavesValidUntilMs(slot: SupersededSlot<IntermediateCertificate>, policy: RotationPolicy): number {
  return Math.min(slot.cert.notAfterMs, slot.supersededAtMs + policy.reloadBoundMs + Math.max(slot.maxLeafTtlMs, policy.maxLeafTtlMs));
}

/**
 * The trust bundle: every root not retired, oldest first; roots with the same notBefore (one
 * prepared within the second the other was made) in the order they joined the key store. The
 * order does not change when a root is activated, so the bundle's bytes (and every SDS version and
 * client channel keyed on them) change only when a root joins or leaves.
 */
export function trustBundleRoots(state: RotationState): RootSlot[] {
  // state.roots is in joining order (prepare appends; activate and retire replace in place), and sort is stable.
  return state.roots.filter(isTrusted).sort((a, b) => a.cert.notBeforeMs - b.cert.notBeforeMs);
}

export type RootStep =
  | { readonly step: 'prepare'; readonly allowedAtMs: number; readonly why: string }
  | { readonly step: 'activate'; readonly keyId: string; readonly allowedAtMs: number; readonly why: string }
  | { readonly step: 'retire'; readonly keyId: string; readonly allowedAtMs: number; readonly why: string };

/** The next safe step of a root rotation and the earliest moment it is safe. */
export function nextRootStep(state: RotationState, nowMs: number, policy: RotationPolicy): RootStep {
  const prepared = slotsIn(state.roots, 'prepared')[0];
  if (prepared) {
    const at = activationAllowedAtMs(prepared, policy);
    return {
      step: 'activate',
      keyId: prepared.cert.keyId,
      allowedAtMs: at,
      why:
        at <= nowMs
          ? 'the new bundle has been out for a whole leaf lifetime; every workload trusts the new root'
          : `wait ${formatDuration(Math.ceil((at - nowMs) / 1000) * 1000)} more, until every workload has renewed once and holds the new bundle`,
    };
  }
  const superseded = slotsIn(state.roots, 'superseded')[0];
  if (superseded) {
    const at = leavesValidUntilMs(state, superseded, policy);
    return {
      step: 'retire',
      keyId: superseded.cert.keyId,
      allowedAtMs: at,
      why:
        at <= nowMs
          ? 'nothing the old root signed is still valid; it can leave the bundle'
          : `wait ${formatDuration(Math.ceil((at - nowMs) / 1000) * 1000)} more, until the last leaf from the old chain has expired`,
    };
  }
  return { step: 'prepare', allowedAtMs: nowMs, why: 'no rotation in progress; prepare a new root whenever you want to rotate' };
}

export type IntermediateStep =
  | { readonly step: 'none' }
  | { readonly step: 'prepare'; readonly rootKeyId: string }
  | { readonly step: 'activate'; readonly keyId: string }
  | { readonly step: 'retire'; readonly keyId: string };

function lifePoint(cert: { notBeforeMs: number; notAfterMs: number }, fraction: number): number {
  return cert.notBeforeMs + (cert.notAfterMs - cert.notBeforeMs) * fraction;
}

/** When the active root's intermediate is prepared and activated, and old ones cleared away. */
export function intermediateScheduleAtMs(active: { notBeforeMs: number; notAfterMs: number }): { prepareAtMs: number; activateAtMs: number } {
  return { prepareAtMs: lifePoint(active, INTERMEDIATE_PREPARE_AT), activateAtMs: lifePoint(active, INTERMEDIATE_ACTIVATE_AT) };
}

/** The one intermediate step due now under the active root, if any. */
export function nextIntermediateStep(state: RotationState, nowMs: number, policy: RotationPolicy): IntermediateStep {
  const root = activeSlotOf(state.roots, 'root');
  const under = intermediatesUnder(state, root.cert.keyId);
  const active = activeSlotOf(under, 'intermediate under the active root');
  const { prepareAtMs, activateAtMs } = intermediateScheduleAtMs(active.cert);
  const prepared = slotsIn(under, 'prepared')[0];
  if (prepared) {
    // Other replicas must know the new intermediate (mTLS renewals) before it signs.
    if (nowMs >= Math.max(activateAtMs, prepared.preparedAtMs + policy.reloadBoundMs)) return { step: 'activate', keyId: prepared.cert.keyId };
  } else if (nowMs >= prepareAtMs && root.cert.hasKey) {
    return { step: 'prepare', rootKeyId: root.cert.keyId };
  }
  for (const old of slotsIn(under, 'superseded')) {
    if (intermediateLeavesValidUntilMs(old, policy) <= nowMs) return { step: 'retire', keyId: old.cert.keyId };
  }
  return { step: 'none' };
}
