// The canonical encoding and hashes behind the ledger's tamper evidence. Anyone can recompute them
// from an export (docs/audit.md spells them out); changing them breaks every existing ledger.

import { createHash } from 'node:crypto';
import { MeshcaError } from '../errors/index.ts';
import type { LedgerEvent } from './events.ts';

/** The `prev` of record 1: 32 zero bytes. */
export const GENESIS_HASH = '0'.repeat(64);

/** Domain separation for checkpoint signatures, so a signature can never pass as anything else. */
export const CHECKPOINT_CONTEXT = 'meshca-ledger-checkpoint-v1';

type Json = string | number | boolean | null | readonly Json[] | { readonly [k: string]: Json | undefined };

/**
 * JSON Canonicalization Scheme (RFC 8785) for the values events hold: object keys sorted by UTF-16
 * code units, no whitespace, undefined members dropped, numbers as ECMAScript prints them.
 */
export function canonicalJson(value: unknown): string {
  return encode(value as Json);
}

function encode(value: Json | undefined): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      // RFC 8785 §3.2.2.3: NaN and Infinity have no JSON form.
      if (!Number.isFinite(value)) throw new MeshcaError('INTERNAL', 'a ledger event holds a number that is not finite');
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => encode(v)).join(',')}]`;
      // On the issuance hot path: one sort, one pass, no intermediate arrays.
      const obj = value as { readonly [k: string]: Json | undefined };
      const keys = Object.keys(obj).sort();
      let out = '{';
      for (const k of keys) {
        const v = obj[k];
        if (v === undefined) continue;
        if (out.length > 1) out += ',';
        out += `${JSON.stringify(k)}:${typeof v === 'string' ? JSON.stringify(v) : encode(v)}`;
      }
      return `${out}}`;
    }
    default:
      throw new MeshcaError('INTERNAL', `a ledger event holds a ${typeof value}, which has no canonical form`);
  }
}

export function encodeEvent(event: LedgerEvent): string {
  return canonicalJson(event);
}

/**
 * A record's chain hash: SHA-256 over the canonical JSON of {"event": …, "prev": …, "seq": …}.
 * `eventJson` is the stored canonical text of the event, hashed as it stands, so a stored event
 * that was re-encoded in any way no longer matches.
 */
export function recordHash(seq: number, prevHash: string, eventJson: string): string {
  return createHash('sha256').update(`{"event":${eventJson},"prev":"${prevHash}","seq":${seq}}`).digest('hex');
}

/** The bytes a checkpoint signature covers. */
export function checkpointMessage(seq: number, headHash: string, timeMs: number): Buffer {
  return Buffer.from(`${CHECKPOINT_CONTEXT}\n${seq}\n${headHash}\n${timeMs}`, 'utf8');
}
