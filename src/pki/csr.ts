// Certificate signing requests (RFC 2986): parse, check the proof of possession, classify the key.
// What the CSR claims about identity (subject, SANs, extensions) is never read: identity comes
// from authentication, and this module does not even return those fields.
// Parsing walks the DER directly (the generic asn1-schema parser costs ~200 µs per CSR); tests
// check it against asn1-schema's reading of the same CSRs.

import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { describeError, MeshcaError } from '../errors/index.ts';
import { childrenOf, expectTlv, TAG } from './der.ts';
import { decodeSinglePem } from './pem.ts';
import { keyAlgorithmOf, type KeyAlgorithm } from './key_types.ts';

/** Biggest CSR we parse; an RSA-4096 CSR with many SANs is about 2 KiB. */
export const MAX_CSR_BYTES = 16 * 1024;

type Hash = 'sha256' | 'sha384' | 'sha512';
interface CsrSignature {
  name: string;
  hash?: Hash;
  key?: 'ec' | 'rsa';
}

const CSR_SIGNATURES: Record<string, CsrSignature> = {
  '1.2.840.10045.4.3.2': { name: 'ecdsa-with-SHA256', hash: 'sha256', key: 'ec' },
  '1.2.840.10045.4.3.3': { name: 'ecdsa-with-SHA384', hash: 'sha384', key: 'ec' },
  '1.2.840.10045.4.3.4': { name: 'ecdsa-with-SHA512', hash: 'sha512', key: 'ec' },
  '1.2.840.113549.1.1.11': { name: 'sha256WithRSAEncryption', hash: 'sha256', key: 'rsa' },
  '1.2.840.113549.1.1.12': { name: 'sha384WithRSAEncryption', hash: 'sha384', key: 'rsa' },
  '1.2.840.113549.1.1.13': { name: 'sha512WithRSAEncryption', hash: 'sha512', key: 'rsa' },
  // Known but refused, so the error can name them.
  '1.2.840.113549.1.1.5': { name: 'sha1WithRSAEncryption' },
  '1.2.840.113549.1.1.4': { name: 'md5WithRSAEncryption' },
  '1.2.840.10045.4.1': { name: 'ecdsa-with-SHA1' },
  '1.2.840.113549.1.1.10': { name: 'RSASSA-PSS' },
  '1.3.101.112': { name: 'Ed25519' },
};

/** AlgorithmIdentifier DER → signature description, keyed by the exact bytes (computed once). */
const SIGNATURES_BY_DER = new Map<string, CsrSignature>();
for (const [oid, sig] of Object.entries(CSR_SIGNATURES)) {
  const withoutParams = Buffer.from(AsnConvert.serialize(new AlgorithmIdentifier({ algorithm: oid })));
  const withNull = Buffer.from(AsnConvert.serialize(new AlgorithmIdentifier({ algorithm: oid, parameters: null })));
  SIGNATURES_BY_DER.set(withoutParams.toString('hex'), sig);
  // RFC 4055 §5: RSA identifiers carry NULL parameters (some encoders omit them; both accepted).
  if (oid.startsWith('1.2.840.113549.')) SIGNATURES_BY_DER.set(withNull.toString('hex'), sig);
}

export interface VerifiedCsr {
  readonly publicKey: KeyObject;
  readonly keyAlgorithm: KeyAlgorithm;
  /** DER of the SubjectPublicKeyInfo, exactly as the CSR carries it. */
  readonly spkiDer: Buffer;
}

function bad(message: string, cause?: unknown): MeshcaError {
  return new MeshcaError('BAD_CSR', message, cause === undefined ? undefined : { cause });
}

export function parseCsrPem(pem: string): VerifiedCsr {
  if (pem.length > MAX_CSR_BYTES * 2) throw bad(`CSR is ${pem.length} bytes; at most ${MAX_CSR_BYTES * 2} are accepted`);
  let der: Buffer;
  try {
    der = decodeSinglePem(pem, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'], 'CSR');
  } catch (err) {
    throw bad(describeError(err), err);
  }
  return parseCsrDer(der);
}

interface CsrParts {
  infoDer: Buffer;
  spkiDer: Buffer;
  signatureAlgorithmDer: Buffer;
  signature: Buffer;
}

function splitCsr(der: Buffer): CsrParts {
  const outer = expectTlv(der, 0, TAG.SEQUENCE, 'CertificationRequest');
  if (outer.end !== der.length) throw bad('CSR has trailing bytes after its DER structure');
  const [info, alg, sig, ...extra] = childrenOf(der, outer);
  if (!info || !alg || !sig || extra.length > 0) throw bad('CSR must hold exactly certificationRequestInfo, signatureAlgorithm and signature');
  if (info.tag !== TAG.SEQUENCE || alg.tag !== TAG.SEQUENCE || sig.tag !== TAG.BIT_STRING) {
    throw bad('CSR fields have the wrong types');
  }
  const [version, subject, spki] = childrenOf(der, info);
  if (!version || version.tag !== TAG.INTEGER || version.end - version.contentStart !== 1 || der[version.contentStart] !== 0) {
    throw bad('CSR version must be v1 (0)');
  }
  if (!subject || subject.tag !== TAG.SEQUENCE) throw bad('CSR subject is not a Name');
  if (!spki || spki.tag !== TAG.SEQUENCE) throw bad('CSR subjectPKInfo is missing');
  if (der[sig.contentStart] !== 0) throw bad('CSR signature BIT STRING has unused bits');
  return {
    infoDer: der.subarray(info.start, info.end),
    spkiDer: der.subarray(spki.start, spki.end),
    signatureAlgorithmDer: der.subarray(alg.start, alg.end),
    signature: der.subarray(sig.contentStart + 1, sig.end),
  };
}

/**
 * The key is copied into the certificate exactly as the CSR carries it, so it must already be in
 * the form every verifier reads: RFC 5480 §2.1.1 named curve (OpenSSL parses explicit curve
 * parameters, Go and BoringSSL refuse them) and an uncompressed point (RFC 5480 §2.2: compressed is
 * optional, and Go refuses it). Node keeps whichever form it parsed, so read the DER itself.
 */
function refuseNonCanonicalKey(spkiDer: Buffer, publicKey: KeyObject): void {
  if (publicKey.asymmetricKeyType !== 'ec') return;
  const [algorithm, key] = childrenOf(spkiDer, expectTlv(spkiDer, 0, TAG.SEQUENCE, 'SubjectPublicKeyInfo'));
  const parameters = algorithm ? childrenOf(spkiDer, algorithm)[1] : undefined;
  if (!parameters || parameters.tag !== TAG.OID) {
    throw bad('CSR key uses explicit EC curve parameters, which Go and BoringSSL refuse; encode it with the named curve (OpenSSL: -pkeyopt ec_param_enc:named_curve)');
  }
  // The BIT STRING's first content octet counts unused bits; the point's format octet follows.
  const pointFormat = key ? spkiDer[key.contentStart + 1] : undefined;
  if (pointFormat !== 0x04) {
    throw bad('CSR key is a compressed EC point, which Go refuses; send the uncompressed point (OpenSSL: -conv_form uncompressed)');
  }
}

export function parseCsrDer(input: Uint8Array): VerifiedCsr {
  if (input.length > MAX_CSR_BYTES) throw bad(`CSR is ${input.length} bytes; at most ${MAX_CSR_BYTES} are accepted`);
  const der = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  let parts: CsrParts;
  try {
    parts = splitCsr(der);
  } catch (err) {
    if (err instanceof MeshcaError && err.code === 'BAD_CSR') throw err;
    throw bad(`CSR is not a valid PKCS#10 certification request (${describeError(err)})`, err);
  }
  const signature = SIGNATURES_BY_DER.get(parts.signatureAlgorithmDer.toString('hex'));
  if (!signature) throw bad('CSR signature algorithm is not supported; use ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512');
  if (!signature.hash) throw bad(`CSR signature algorithm ${signature.name} is not accepted; sign the CSR with ECDSA or RSA PKCS#1 v1.5 and SHA-256 or stronger`);

  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: parts.spkiDer, format: 'der', type: 'spki' });
  } catch (err) {
    throw bad('CSR public key could not be read', err);
  }
  const keyAlgorithm = keyAlgorithmOf(publicKey);
  refuseNonCanonicalKey(parts.spkiDer, publicKey);
  if (keyAlgorithm.kind !== signature.key) {
    throw bad(`CSR is signed with ${signature.name} but its key is ${keyAlgorithm.kind === 'ec' ? 'ECDSA' : 'RSA'}`);
  }
  let valid = false;
  try {
    valid = cryptoVerify(signature.hash, parts.infoDer, publicKey, parts.signature);
  } catch (err) {
    throw bad('CSR signature could not be checked', err);
  }
  if (!valid) throw bad('CSR signature does not verify against its own public key (proof of possession failed)');
  return Object.freeze({ publicKey, keyAlgorithm, spkiDer: Buffer.from(parts.spkiDer) });
}
