// Key slots: one generic type for roots and intermediates, moving prepared → active → superseded →
// retired. Transitions are pure functions returning new slots; they never touch keys or files.

import { MeshcaError } from '../errors/index.ts';

/**
 * - prepared: made and trusted (roots join the bundle), signs nothing yet;
 * - active: signs; exactly one per kind;
 * - superseded: replaced by a newer active slot, still trusted while what it signed is valid
 *   (SPIRE's "old" slot);
 * - retired: out of the bundle; kept only as history.
 */
export type SlotState = 'prepared' | 'active' | 'superseded' | 'retired';

/** What a slot always knows about its certificate. */
export interface SlotCertificate {
  /** Subject key identifier, hex: the slot's name everywhere (directories, ledger, status). */
  readonly keyId: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** False for an operator's external root whose key meshca never holds. */
  readonly hasKey: boolean;
}

interface SlotBase<M extends SlotCertificate> {
  readonly cert: M;
  readonly preparedAtMs: number;
}

export interface PreparedSlot<M extends SlotCertificate> extends SlotBase<M> {
  readonly state: 'prepared';
}
export interface ActiveSlot<M extends SlotCertificate> extends SlotBase<M> {
  readonly state: 'active';
  readonly activatedAtMs: number;
}
export interface SupersededSlot<M extends SlotCertificate> extends SlotBase<M> {
  readonly state: 'superseded';
  readonly activatedAtMs?: number;
  readonly supersededAtMs: number;
  /** Longest leaf TTL in force when it stopped signing: its leaves are valid until supersededAtMs + this. */
  readonly maxLeafTtlMs: number;
}
export interface RetiredSlot<M extends SlotCertificate> extends SlotBase<M> {
  readonly state: 'retired';
  readonly activatedAtMs?: number;
  readonly supersededAtMs?: number;
  readonly retiredAtMs: number;
  /** Retired before everything it signed had expired (operator's --force, e.g. a compromised key). */
  readonly forced: boolean;
}

export type Slot<M extends SlotCertificate> = PreparedSlot<M> | ActiveSlot<M> | SupersededSlot<M> | RetiredSlot<M>;

export function prepareSlot<M extends SlotCertificate>(cert: M, nowMs: number): PreparedSlot<M> {
  return { state: 'prepared', cert, preparedAtMs: nowMs };
}

export function activateSlot<M extends SlotCertificate>(slot: PreparedSlot<M>, nowMs: number): ActiveSlot<M> {
  return { state: 'active', cert: slot.cert, preparedAtMs: slot.preparedAtMs, activatedAtMs: nowMs };
}

/** The slot stops signing; everything it signed stays trusted for `maxLeafTtlMs` more. */
export function supersedeSlot<M extends SlotCertificate>(slot: ActiveSlot<M> | PreparedSlot<M>, nowMs: number, maxLeafTtlMs: number): SupersededSlot<M> {
  return {
    state: 'superseded',
    cert: slot.cert,
    preparedAtMs: slot.preparedAtMs,
    ...(slot.state === 'active' ? { activatedAtMs: slot.activatedAtMs } : {}),
    supersededAtMs: nowMs,
    maxLeafTtlMs,
  };
}

export function retireSlot<M extends SlotCertificate>(slot: SupersededSlot<M> | PreparedSlot<M>, nowMs: number, forced: boolean): RetiredSlot<M> {
  return {
    state: 'retired',
    cert: slot.cert,
    preparedAtMs: slot.preparedAtMs,
    ...(slot.state === 'superseded' ? { supersededAtMs: slot.supersededAtMs, ...(slot.activatedAtMs !== undefined ? { activatedAtMs: slot.activatedAtMs } : {}) } : {}),
    retiredAtMs: nowMs,
    forced,
  };
}

/** Slots still trusted: prepared, active and superseded ones. */
export function isTrusted<M extends SlotCertificate>(slot: Slot<M>): boolean {
  return slot.state !== 'retired';
}

export function slotsIn<M extends SlotCertificate, S extends SlotState>(slots: readonly Slot<M>[], state: S): Extract<Slot<M>, { state: S }>[] {
  return slots.filter((s): s is Extract<Slot<M>, { state: S }> => s.state === state);
}

/** The one active slot; a store without one is broken, and says so. */
export function activeSlotOf<M extends SlotCertificate>(slots: readonly Slot<M>[], what: string): ActiveSlot<M> {
  const active = slotsIn(slots, 'active');
  if (active.length !== 1) throw new MeshcaError('BAD_CHAIN', `the key store has ${active.length} active ${what}s; it needs exactly one`);
  return active[0]!;
}
