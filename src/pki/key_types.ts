// Key algorithms meshca accepts and makes. Anything not listed here is refused by name.

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { MeshcaError } from '../errors/index.ts';
import { DEFAULT_KEY_TYPE, KEY_TYPES, type KeyType } from './settings/index.ts';

export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 4096;

export type KeyAlgorithm =
  | { kind: 'ec'; curve: 'P-256' | 'P-384' }
  | { kind: 'rsa'; bits: number };

export function parseKeyType(text: string): KeyType {
  if ((KEY_TYPES as readonly string[]).includes(text)) return text as KeyType;
  throw new MeshcaError('BAD_CONFIG', `key type "${text}" is not supported; use one of ${KEY_TYPES.join(', ')}`);
}

export function generateKeyPair(type: KeyType = DEFAULT_KEY_TYPE): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (type) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096':
      return generateKeyPairSync('rsa', { modulusLength: Number(type.slice(4)), publicExponent: 0x10001 });
  }
}

/**
 * Classifies a public (or private) key, refusing anything outside the supported set with a
 * message that names what was found and what is allowed.
 */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'ec') {
    if (details.namedCurve === 'prime256v1') return { kind: 'ec', curve: 'P-256' };
    if (details.namedCurve === 'secp384r1') return { kind: 'ec', curve: 'P-384' };
    throw new MeshcaError(
      'UNSUPPORTED_KEY',
      `ECDSA curve ${details.namedCurve ?? 'unknown'} is not supported; use P-256 or P-384`,
    );
  }
  if (type === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
      throw new MeshcaError(
        'UNSUPPORTED_KEY',
        `RSA key of ${bits} bits is not supported; use ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`,
      );
    }
    return { kind: 'rsa', bits };
  }
  throw new MeshcaError(
    'UNSUPPORTED_KEY',
    `${type ?? 'unknown'} keys are not supported; use ECDSA P-256/P-384 or RSA ${MIN_RSA_BITS}-${MAX_RSA_BITS}`,
  );
}
