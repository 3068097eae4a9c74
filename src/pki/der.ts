// Minimal strict DER (X.690) for the issuance hot path: writing TLVs around already-encoded parts,
// and walking a structure to find the byte ranges of its elements. Generic encoding and decoding
// of whole structures is left to asn1-schema; tests check both produce identical bytes.

import { MeshcaError } from '../errors/index.ts';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function lengthOctets(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

export function derTlv(tag: number, ...parts: Uint8Array[]): Buffer {
  let total = 0;
  for (const p of parts) total += p.length;
  return Buffer.concat([Uint8Array.of(tag), lengthOctets(total), ...parts]);
}

export function derSequence(...parts: Uint8Array[]): Buffer {
  return derTlv(TAG.SEQUENCE, ...parts);
}

/** X.690 §8.19: an OBJECT IDENTIFIER from its dotted form. */
export function derOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new MeshcaError('INTERNAL', `not an object identifier: ${dotted}`);
  const octets: number[] = [];
  for (const arc of [arcs[0]! * 40 + arcs[1]!, ...arcs.slice(2)]) {
    const base128: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) base128.unshift(0x80 | (n & 0x7f));
    octets.push(...base128);
  }
  return derTlv(TAG.OID, Uint8Array.from(octets));
}

/** A BIT STRING with no unused bits, as X.509 signatures and keys are. */
export function derBitString(bytes: Uint8Array): Buffer {
  return derTlv(TAG.BIT_STRING, Uint8Array.of(0), bytes);
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, whole seconds, Zulu. */
export function derTime(ms: number): Buffer {
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = Number(iso.slice(0, 4));
  if (year < 2050) return derTlv(TAG.UTC_TIME, Buffer.from(`${digits.slice(2)}Z`, 'latin1'));
  return derTlv(TAG.GENERALIZED_TIME, Buffer.from(`${digits}Z`, 'latin1'));
}

export interface Tlv {
  readonly tag: number;
  /** Offset of the tag octet. */
  readonly start: number;
  readonly contentStart: number;
  /** Offset just past the content. */
  readonly end: number;
}

function malformed(what: string): never {
  throw new MeshcaError('BAD_REQUEST', `malformed DER: ${what}`);
}

/** Reads one TLV at `offset` within [offset, limit). Only single-octet tags and definite lengths. */
export function readTlv(buf: Uint8Array, offset: number, limit = buf.length): Tlv {
  if (offset + 2 > limit) malformed('truncated header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) malformed('multi-octet tags are not used here');
  let len = buf[offset + 1]!;
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) malformed('indefinite length is not DER');
    if (n > 3) malformed('length too large');
    if (pos + n > limit) malformed('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + i]!;
    if (len < 0x80 || (n > 1 && buf[pos] === 0)) malformed('length is not minimally encoded');
    pos += n;
  }
  const end = pos + len;
  if (end > limit) malformed('content runs past its container');
  return { tag, start: offset, contentStart: pos, end };
}

export function expectTlv(buf: Uint8Array, offset: number, tag: number, what: string, limit = buf.length): Tlv {
  const tlv = readTlv(buf, offset, limit);
  if (tlv.tag !== tag) malformed(`${what}: expected tag 0x${tag.toString(16)}, found 0x${tlv.tag.toString(16)}`);
  return tlv;
}

/** The children of a constructed TLV, which must exactly fill it. */
export function childrenOf(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.contentStart; pos < parent.end; ) {
    const child = readTlv(buf, pos, parent.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}
