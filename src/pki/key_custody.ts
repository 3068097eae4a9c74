// Where a CA's private key lives and how it signs: in this process's memory (a KeyObject), or in
// a hardware token, named by a reference (a PKCS#11 URI, RFC 7512) that holds no secret. Key
// custody turns either into a Signer and makes new keys where it keeps them; callers never see
// the key itself, and a reference never carries a PIN.

import type { KeyObject } from 'node:crypto';
import { MeshcaError } from '../errors/index.ts';
import { generateKeyPair } from './key_types.ts';
import type { KeyType } from './settings/index.ts';
import { createLocalSigner, type Signer } from './signer.ts';

/** A key kept in a token: the PKCS#11 URI of its private key object (token, object label, id). */
export interface KeyReference {
  readonly kind: 'pkcs11';
  readonly uri: string;
}

export type CaPrivateKey = KeyObject | KeyReference;

export function isKeyReference(key: CaPrivateKey): key is KeyReference {
  return (key as KeyReference).kind === 'pkcs11' && typeof (key as KeyReference).uri === 'string';
}

export interface KeyCustody {
  /** Where new keys are made: "memory" or the token's label. */
  readonly name: string;
  /** A signer for the key; a reference this custody cannot reach is KEYS_MISSING naming the fix. */
  signerFor(key: CaPrivateKey): Signer;
  /** Makes a new key pair where this custody keeps keys (in a token: non-extractable). */
  generate(keyType: KeyType): Promise<{ readonly key: CaPrivateKey; readonly publicKey: KeyObject }>;
}

/** Keys in memory (files in the key store); a token's key needs --signer. */
export const LOCAL_KEY_CUSTODY: KeyCustody = Object.freeze({
  name: 'memory',
  signerFor(key: CaPrivateKey): Signer {
    if (isKeyReference(key)) {
      throw new MeshcaError('KEYS_MISSING', `the CA key is in a hardware token (${key.uri}); start with --signer pkcs11:… naming its module and PIN source`);
    }
    return createLocalSigner(key);
  },
  async generate(keyType: KeyType) {
    const { privateKey, publicKey } = generateKeyPair(keyType);
    return { key: privateKey, publicKey };
  },
});

/** The text of a key reference file (ca-key.pkcs11): the URI on one line. */
export function formatKeyReference(ref: KeyReference): string {
  return `${ref.uri}\n`;
}

export function parseKeyReference(text: string, where: string): KeyReference {
  const uri = text.trim();
  if (!uri.startsWith('pkcs11:') || /[?&]pin-value=/.test(uri)) {
    throw new MeshcaError('BAD_KEY_FILE', `${where} is not a PKCS#11 key reference (one pkcs11: URI without a PIN)`);
  }
  return { kind: 'pkcs11', uri };
}
