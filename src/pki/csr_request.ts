// Makes a PKCS#10 certificate signing request (RFC 2986) for a key held in this process, so an
// agent can ask for a certificate without the key leaving memory. Never writes or logs the key.

import { createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AlgorithmIdentifier, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { keyAlgorithmOf } from './key_types.ts';
import { toPem } from './pem.ts';
import { signatureAlgorithmFor } from './signer.ts';

/**
 * A CSR with an empty subject and no extensions: meshca derives identity from the authenticated
 * caller and ignores what a CSR claims, so claiming nothing keeps the request honest.
 */
export function createCsrPem(privateKey: KeyObject): string {
  const algorithm = signatureAlgorithmFor(keyAlgorithmOf(privateKey));
  const spkiDer = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const info = new CertificationRequestInfo({
    version: 0,
    subject: new Name([]),
    subjectPKInfo: AsnConvert.parse(spkiDer, SubjectPublicKeyInfo),
    attributes: new Attributes(),
  });
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  // node:crypto signs ECDSA in DER (ECDSA-Sig-Value), which is what PKCS#10 carries.
  const signature = cryptoSign(algorithm.hash, infoDer, privateKey);
  const request = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: algorithm.oid, ...(algorithm.nullParams ? { parameters: null } : {}) }),
    signature: new Uint8Array(signature).buffer,
  });
  return toPem(Buffer.from(AsnConvert.serialize(request)), 'CERTIFICATE REQUEST');
}
