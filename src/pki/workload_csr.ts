// A workload's PKCS#10 certificate signing request (RFC 2986) for a key held in this process, so an
// agent can ask for a certificate without the key leaving memory. Encoded with the few DER
// primitives in der.ts, not an ASN.1 library: every agent makes one per renewal and loads this.
// Never writes or logs the key.

import { createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { derBitString, derSequence, TAG } from './der.ts';
import { keyAlgorithmOf } from './key_types.ts';
import { toPem } from './pem.ts';
import { algorithmIdentifierDer, signatureAlgorithmFor } from './signer.ts';

const VERSION_1 = Buffer.from([TAG.INTEGER, 0x01, 0x00]);
/** An empty Name (RDNSequence). */
const EMPTY_NAME = derSequence();
/** attributes [0] IMPLICIT SET OF Attribute, empty. */
const NO_ATTRIBUTES = Buffer.from([0xa0, 0x00]);

/**
 * A CSR with an empty subject and no extensions: meshca derives identity from the authenticated
 * caller and ignores what a CSR claims, so claiming nothing keeps the request honest.
 */
export function createCsrPem(privateKey: KeyObject): string {
  const algorithm = signatureAlgorithmFor(keyAlgorithmOf(privateKey));
  const spkiDer = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const infoDer = derSequence(VERSION_1, EMPTY_NAME, spkiDer, NO_ATTRIBUTES);
  // node:crypto signs ECDSA in DER (ECDSA-Sig-Value), which is what PKCS#10 carries.
  const signature = cryptoSign(algorithm.hash, infoDer, privateKey);
  return toPem(derSequence(infoDer, algorithmIdentifierDer(algorithm), derBitString(signature)), 'CERTIFICATE REQUEST');
}
