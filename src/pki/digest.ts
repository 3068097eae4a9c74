// SHA-256 as meshca reports it everywhere (token hashes, key fingerprints, bundle digests): hex.

import { createHash } from 'node:crypto';

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
