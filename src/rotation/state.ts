// The stored rotation state: every root and intermediate slot with its timestamps, and a version
// that each committed transition increments (the compare-and-swap token). Plain data, no keys.

import { MeshcaError } from '../errors/index.ts';
import type { Slot, SlotCertificate, SlotState } from './slots.ts';

export interface RootCertificate extends SlotCertificate {
  readonly subject: string;
}

export interface IntermediateCertificate extends SlotCertificate {
  readonly subject: string;
  /** The root that signed it. */
  readonly rootKeyId: string;
}

export type RootSlot = Slot<RootCertificate>;
export type IntermediateSlot = Slot<IntermediateCertificate>;

export interface RotationState {
  /** Incremented by every committed transition; 0 for a key directory never rotated. */
  readonly version: number;
  readonly updatedAtMs: number;
  readonly roots: readonly RootSlot[];
  readonly intermediates: readonly IntermediateSlot[];
}

const STATES: readonly SlotState[] = ['prepared', 'active', 'superseded', 'retired'];
const FORMAT = 'meshca-rotation-state/v1';

function bad(what: string): MeshcaError {
  return new MeshcaError('BAD_KEY_FILE', `the rotation state file is damaged: ${what}; restore it from a backup or run "meshca root status" to see what is there`);
}

function checkSlot(raw: unknown, i: number, kind: string): void {
  const s = raw as { state?: unknown; cert?: { keyId?: unknown; notBeforeMs?: unknown; notAfterMs?: unknown }; preparedAtMs?: unknown };
  if (!s || typeof s !== 'object') throw bad(`${kind}[${i}] is not an object`);
  if (!STATES.includes(s.state as SlotState)) throw bad(`${kind}[${i}].state "${String(s.state)}" is not one of ${STATES.join(', ')}`);
  if (typeof s.cert?.keyId !== 'string' || !/^[0-9a-f]+$/.test(s.cert.keyId)) throw bad(`${kind}[${i}].cert.keyId is missing`);
  if (typeof s.cert.notAfterMs !== 'number' || typeof s.cert.notBeforeMs !== 'number') throw bad(`${kind}[${i}] has no validity`);
  if (typeof s.preparedAtMs !== 'number') throw bad(`${kind}[${i}].preparedAtMs is missing`);
}

export function parseRotationState(text: string): RotationState {
  let doc: { format?: unknown; version?: unknown; updatedAtMs?: unknown; roots?: unknown; intermediates?: unknown };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    throw bad('not JSON');
  }
  if (doc.format !== FORMAT) throw bad(`format is "${String(doc.format)}", expected ${FORMAT}`);
  if (typeof doc.version !== 'number' || !Number.isInteger(doc.version) || doc.version < 1) throw bad('version is not a positive whole number');
  if (!Array.isArray(doc.roots) || !Array.isArray(doc.intermediates)) throw bad('roots or intermediates missing');
  doc.roots.forEach((r, i) => checkSlot(r, i, 'roots'));
  doc.intermediates.forEach((r, i) => checkSlot(r, i, 'intermediates'));
  return {
    version: doc.version,
    updatedAtMs: Number(doc.updatedAtMs ?? 0),
    roots: doc.roots as RootSlot[],
    intermediates: doc.intermediates as IntermediateSlot[],
  };
}

export function serializeRotationState(state: RotationState): string {
  return `${JSON.stringify({ format: FORMAT, version: state.version, updatedAtMs: state.updatedAtMs, roots: state.roots, intermediates: state.intermediates }, null, 2)}\n`;
}

export function intermediatesUnder(state: RotationState, rootKeyId: string): IntermediateSlot[] {
  return state.intermediates.filter((s) => s.cert.rootKeyId === rootKeyId);
}
