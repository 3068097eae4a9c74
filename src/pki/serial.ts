// Certificate serial numbers: RFC 5280 §4.1.2.2 allows at most 20 octets, positive;
// CA/B Forum BR §7.1 asks for at least 64 bits from a CSPRNG. We use 128 random bits.

import { randomFillSync } from 'node:crypto';

export const SERIAL_BYTES = 16;

/** Returns the DER INTEGER content octets of a fresh serial. */
export type SerialSource = () => Uint8Array;

export const randomSerial: SerialSource = () => {
  const bytes = new Uint8Array(SERIAL_BYTES);
  randomFillSync(bytes);
  // Clear the sign bit so the INTEGER is positive, and keep the first octet non-zero so the
  // encoding is minimal and the value keeps at least 120 bits of entropy.
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes;
};

export function serialToHex(serial: Uint8Array): string {
  return Buffer.from(serial).toString('hex');
}
