// Certificate serial numbers: RFC 5280 §4.1.2.2 allows at most 20 octets, positive;
// CA/B Forum BR §7.1 asks for at least 64 bits from a CSPRNG. We use 128 random bits.

import { randomFillSync } from 'node:crypto';

export const SERIAL_BYTES = 16;

/** Returns the DER INTEGER content octets of a fresh serial. */
export type SerialSource = () => Uint8Array;

/** CSPRNG bytes are drawn a page at a time: one getrandom call per 256 serials, not per serial. */
const POOL_BYTES = 4096;
let pool = new Uint8Array(0);
let poolAt = 0;

export const randomSerial: SerialSource = () => {
  if (poolAt + SERIAL_BYTES > pool.length) {
    pool = randomFillSync(new Uint8Array(POOL_BYTES));
    poolAt = 0;
  }
  // A copy, so no two serials share memory and nothing reads the pool later.
  const bytes = pool.slice(poolAt, poolAt + SERIAL_BYTES);
  pool.fill(0, poolAt, poolAt + SERIAL_BYTES);
  poolAt += SERIAL_BYTES;
  // Clear the sign bit so the INTEGER is positive, and keep the first octet non-zero so the
  // encoding is minimal and the value keeps at least 120 bits of entropy.
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes;
};

export function serialToHex(serial: Uint8Array): string {
  return Buffer.from(serial).toString('hex');
}
