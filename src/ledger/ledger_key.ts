// The ledger key: an ECDSA P-256 key, used only to sign checkpoints, kept as ledger-key.pem (0600)
// in the CA key directory. Never used for certificates; never logged or put in a message.

import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MeshcaError } from '../errors/index.ts';
import { readFileSync } from 'node:fs';
import { PUBLIC_FILE_MODE, readOrCreatePrivateKeyFile, readPrivateKeyFile, sha256Hex, writeFileAtomic } from '../pki/index.ts';
import { checkpointMessage } from './canonical.ts';
import type { StoredCheckpoint } from './store.ts';

export const LEDGER_KEY_FILE = 'ledger-key.pem';
/** The public half, for auditors who verify a copy of the ledger without the CA's secrets. */
export const LEDGER_PUBLIC_KEY_FILE = 'ledger-key.pub.pem';

export interface LedgerKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly keyId: string;
}

/** SHA-256 hex of the SubjectPublicKeyInfo DER: names the key in every checkpoint it signs. */
export function ledgerKeyIdOf(publicKey: KeyObject): string {
  return sha256Hex(publicKey.export({ format: 'der', type: 'spki' }));
}

export function ledgerKeyFrom(privateKey: KeyObject): LedgerKey {
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new MeshcaError('BAD_KEY_FILE', 'the ledger key must be an ECDSA P-256 key');
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: ledgerKeyIdOf(publicKey) };
}

/** Reads `<keysDir>/ledger-key.pem`, making it (atomically, 0600) on first use. */
export function loadOrCreateLedgerKey(keysDir: string): LedgerKey {
  const path = join(keysDir, LEDGER_KEY_FILE);
  const key = ledgerKeyFrom(readOrCreatePrivateKeyFile(path, () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey));
  const pubPath = join(keysDir, LEDGER_PUBLIC_KEY_FILE);
  if (!existsSync(pubPath)) writeFileAtomic(pubPath, key.publicKey.export({ format: 'pem', type: 'spki' }) as string, PUBLIC_FILE_MODE);
  return key;
}

/**
 * The ledger key's public half from a key directory (ledger-key.pem, or ledger-key.pub.pem for
 * an auditor's copy); undefined if neither is there. Verification never makes a key.
 */
export function readLedgerPublicKey(keysDir: string): KeyObject | undefined {
  const path = join(keysDir, LEDGER_KEY_FILE);
  if (existsSync(path)) return createPublicKey(readPrivateKeyFile(path));
  const pubPath = join(keysDir, LEDGER_PUBLIC_KEY_FILE);
  if (!existsSync(pubPath)) return undefined;
  try {
    return createPublicKey(readFileSync(pubPath, 'utf8'));
  } catch (err) {
    throw new MeshcaError('BAD_KEY_FILE', `${pubPath} is not a PEM public key`, { cause: err });
  }
}

export function signCheckpoint(key: LedgerKey, seq: number, headHash: string, timeMs: number): StoredCheckpoint {
  const signature = sign('sha256', checkpointMessage(seq, headHash, timeMs), key.privateKey).toString('base64');
  return { seq, headHash, timeMs, keyId: key.keyId, signature };
}

export function isCheckpointSignedBy(cp: StoredCheckpoint, publicKey: KeyObject): boolean {
  try {
    return verify('sha256', checkpointMessage(cp.seq, cp.headHash, cp.timeMs), publicKey, Buffer.from(cp.signature, 'base64'));
  } catch {
    return false;
  }
}
