// The one interface through which CA keys sign. An in-process key, a worker pool or a PKCS#11
// token all fit behind it; callers never see the private key itself.

import { sign as cryptoSign, createPublicKey, type KeyObject } from 'node:crypto';
import { derOid, derSequence, TAG } from './der.ts';
import { keyAlgorithmOf, type KeyAlgorithm } from './key_types.ts';

/** RFC 5758 §3.2 / RFC 4055: the signature algorithm OID and digest for an issuer key. */
export interface SignatureAlgorithm {
  readonly oid: string;
  readonly hash: 'sha256' | 'sha384';
  /** RSA AlgorithmIdentifiers carry an explicit NULL parameter (RFC 4055 §5); ECDSA ones omit it. */
  readonly nullParams: boolean;
}

export const ECDSA_WITH_SHA256: SignatureAlgorithm = { oid: '1.2.840.10045.4.3.2', hash: 'sha256', nullParams: false };
export const ECDSA_WITH_SHA384: SignatureAlgorithm = { oid: '1.2.840.10045.4.3.3', hash: 'sha384', nullParams: false };
export const SHA256_WITH_RSA: SignatureAlgorithm = { oid: '1.2.840.113549.1.1.11', hash: 'sha256', nullParams: true };

/** AlgorithmIdentifier DER; RSA's carries an explicit NULL (RFC 4055 §5), ECDSA's none (RFC 5758 §3.2). */
export function algorithmIdentifierDer(alg: SignatureAlgorithm): Buffer {
  return alg.nullParams ? derSequence(derOid(alg.oid), Buffer.from([TAG.NULL, 0x00])) : derSequence(derOid(alg.oid));
}

export function signatureAlgorithmFor(alg: KeyAlgorithm): SignatureAlgorithm {
  if (alg.kind === 'rsa') return SHA256_WITH_RSA;
  return alg.curve === 'P-384' ? ECDSA_WITH_SHA384 : ECDSA_WITH_SHA256;
}

export interface Signer {
  readonly algorithm: SignatureAlgorithm;
  readonly publicKey: KeyObject;
  /** Signs `data` and returns the signature in X.509's encoding (DER ECDSA-Sig-Value for EC). */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** A signer over a private key held in this process's memory. */
export function createLocalSigner(privateKey: KeyObject): Signer {
  const algorithm = signatureAlgorithmFor(keyAlgorithmOf(privateKey));
  const publicKey = createPublicKey(privateKey);
  return Object.freeze({
    algorithm,
    publicKey,
    sign: async (data: Uint8Array) => cryptoSign(algorithm.hash, data, privateKey),
  }) satisfies Signer;
}
