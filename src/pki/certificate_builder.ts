// Builds and signs X.509 v3 certificates from DER parts. Everything about the issuer (name, AKI,
// signature algorithm) and the fixed extensions is encoded once, with asn1-schema; per certificate
// only serial, validity, key, SAN and SKI are encoded, then the TBS is signed once.
// Never decides what goes into a certificate: profiles do.

import { createHash } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as asn1 from '@peculiar/asn1-x509';
import { childrenOf, derBitString, derSequence, derTime, derTlv, expectTlv, TAG, type Tlv } from './der.ts';
import { algorithmIdentifierDer, type Signer } from './signer.ts';

/** DER of an Extension; values are encoded by asn1-schema (off the hot path). */
export function encodeExtension(oid: string, critical: boolean, value: unknown): Buffer {
  return Buffer.from(
    AsnConvert.serialize(new asn1.Extension({ extnID: oid, critical, extnValue: new OctetString(AsnConvert.serialize(value)) })),
  );
}

/** The OID (and critical flag) octets that open an Extension, so hot-path values can follow. */
function extensionHead(oid: string, critical: boolean): Buffer {
  const sample = encodeExtension(oid, critical, new asn1.SubjectKeyIdentifier(new Uint8Array(1)));
  const outer = expectTlv(sample, 0, TAG.SEQUENCE, 'extension');
  const kids = childrenOf(sample, outer);
  return Buffer.from(sample.subarray(kids[0]!.start, kids[kids.length - 1]!.start));
}

const SKI_HEAD = extensionHead(asn1.id_ce_subjectKeyIdentifier, false);
const SAN_CRITICAL_HEAD = extensionHead(asn1.id_ce_subjectAltName, true);
const VERSION_3 = Buffer.from([0xa0, 0x03, TAG.INTEGER, 0x01, 0x02]);
const URI_NAME_TAG = 0x86; // GeneralName uniformResourceIdentifier [6] IMPLICIT IA5String

/** SubjectAltName with one URI, critical (the subject is empty): the X509-SVID SAN. */
export function uriSanExtension(uri: string): Buffer {
  const names = derSequence(derTlv(URI_NAME_TAG, Buffer.from(uri, 'latin1')));
  return derSequence(SAN_CRITICAL_HEAD, derTlv(TAG.OCTET_STRING, names));
}

function skiExtension(keyId: Uint8Array): Buffer {
  return derSequence(SKI_HEAD, derTlv(TAG.OCTET_STRING, derTlv(TAG.OCTET_STRING, keyId)));
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value. */
export function subjectKeyIdentifier(spkiDer: Uint8Array): Buffer {
  const spki = expectTlv(spkiDer, 0, TAG.SEQUENCE, 'SubjectPublicKeyInfo');
  const [alg, key] = childrenOf(spkiDer, spki);
  if (!alg || !key || key.tag !== TAG.BIT_STRING) throw new Error('SubjectPublicKeyInfo has no BIT STRING key');
  return createHash('sha1').update(spkiDer.subarray(key.contentStart + 1, key.end)).digest();
}

/** Byte ranges of a certificate's subject and key, read straight from its DER. */
export function certificateFields(certDer: Uint8Array): { subjectDer: Buffer; spkiDer: Buffer } {
  const cert = expectTlv(certDer, 0, TAG.SEQUENCE, 'Certificate');
  const tbs = expectTlv(certDer, cert.contentStart, TAG.SEQUENCE, 'TBSCertificate');
  const fields = childrenOf(certDer, tbs);
  const base = fields[0]?.tag === 0xa0 ? 1 : 0; // explicit version present
  const subject = fields[base + 4];
  const spki = fields[base + 5];
  if (!subject || !spki) throw new Error('TBSCertificate is missing its subject or key');
  return {
    subjectDer: Buffer.from(certDer.subarray(subject.start, subject.end)),
    spkiDer: Buffer.from(certDer.subarray(spki.start, spki.end)),
  };
}

/** What the issuer's final check reads from a certificate it has just built (no X509Certificate parse). */
export interface IssuedFields {
  readonly issuerDer: Buffer;
  readonly spkiDer: Buffer;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** Each extension's whole DER (SEQUENCE { OID, [critical,] OCTET STRING }). */
  readonly extensionsDer: readonly Buffer[];
}

/** RFC 5280 §4.1.2.5: UTCTime (YYMMDDHHMMSSZ, 50–99 → 19xx) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
function parseDerTime(der: Uint8Array, tlv: Tlv): number {
  const text = Buffer.from(der.subarray(tlv.contentStart, tlv.end)).toString('latin1');
  const m = tlv.tag === TAG.UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : tlv.tag === TAG.GENERALIZED_TIME ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  if (!m) throw new Error(`validity time is not a DER UTCTime or GeneralizedTime: ${JSON.stringify(text)}`);
  let year = Number(m[1]);
  if (tlv.tag === TAG.UTC_TIME) year += year >= 50 ? 1900 : 2000;
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

export function readIssuedFields(certDer: Uint8Array): IssuedFields {
  const cert = expectTlv(certDer, 0, TAG.SEQUENCE, 'Certificate');
  if (cert.end !== certDer.length) throw new Error('certificate has trailing bytes');
  const tbs = expectTlv(certDer, cert.contentStart, TAG.SEQUENCE, 'TBSCertificate');
  const fields = childrenOf(certDer, tbs);
  const base = fields[0]?.tag === 0xa0 ? 1 : 0;
  const [issuer, validity, , spki] = [fields[base + 2], fields[base + 3], fields[base + 4], fields[base + 5]];
  if (!issuer || !validity || !spki || validity.tag !== TAG.SEQUENCE) throw new Error('TBSCertificate is missing its issuer, validity or key');
  const [notBefore, notAfter] = childrenOf(certDer, validity);
  if (!notBefore || !notAfter) throw new Error('validity is incomplete');
  const wrapper = fields.find((f) => f.tag === 0xa3);
  const list = wrapper ? childrenOf(certDer, wrapper) : [];
  const extensionsDer = list.length === 1 ? childrenOf(certDer, list[0]!).map((e) => Buffer.from(certDer.subarray(e.start, e.end))) : [];
  return {
    issuerDer: Buffer.from(certDer.subarray(issuer.start, issuer.end)),
    spkiDer: Buffer.from(certDer.subarray(spki.start, spki.end)),
    notBeforeMs: parseDerTime(certDer, notBefore),
    notAfterMs: parseDerTime(certDer, notAfter),
    extensionsDer,
  };
}

/** Everything about an issuer that is the same for every certificate it signs. */
export interface IssuerTemplate {
  readonly nameDer: Buffer;
  readonly keyId: Buffer;
  readonly authorityKeyIdentifierDer: Buffer;
  readonly signatureAlgorithmDer: Buffer;
  readonly signer: Signer;
}

export function makeIssuerTemplate(issuerCertDer: Uint8Array, signer: Signer): IssuerTemplate {
  const { subjectDer, spkiDer } = certificateFields(issuerCertDer);
  return makeTemplate(subjectDer, subjectKeyIdentifier(spkiDer), signer);
}

/** A template for a self-signed certificate: the issuer is the subject itself. */
export function makeSelfIssuerTemplate(nameDer: Buffer, spkiDer: Uint8Array, signer: Signer): IssuerTemplate {
  return makeTemplate(nameDer, subjectKeyIdentifier(spkiDer), signer);
}

function makeTemplate(nameDer: Buffer, keyId: Buffer, signer: Signer): IssuerTemplate {
  return Object.freeze({
    nameDer,
    keyId,
    authorityKeyIdentifierDer: encodeExtension(
      asn1.id_ce_authorityKeyIdentifier,
      false,
      new asn1.AuthorityKeyIdentifier({ keyIdentifier: new asn1.KeyIdentifier(keyId) }),
    ),
    signatureAlgorithmDer: algorithmIdentifierDer(signer.algorithm),
    signer,
  });
}

export interface CertificateParts {
  /** DER INTEGER content octets: positive, minimal. */
  serial: Uint8Array;
  /** Whole seconds; X.509 times carry no fraction. */
  notBeforeMs: number;
  notAfterMs: number;
  subjectDer: Uint8Array;
  spkiDer: Uint8Array;
  /** Encoded extensions in order; SKI and AKI are appended by the builder. */
  extensions: readonly Uint8Array[];
}

/** RFC 5280 §4.1.1.2: TBSCertificate DER, ready to sign. */
export function encodeTbsCertificate(issuer: IssuerTemplate, parts: CertificateParts): Buffer {
  return derSequence(
    VERSION_3,
    derTlv(TAG.INTEGER, parts.serial),
    issuer.signatureAlgorithmDer,
    issuer.nameDer,
    derSequence(derTime(parts.notBeforeMs), derTime(parts.notAfterMs)),
    parts.subjectDer,
    parts.spkiDer,
    derTlv(
      0xa3,
      derSequence(...parts.extensions, skiExtension(subjectKeyIdentifier(parts.spkiDer)), issuer.authorityKeyIdentifierDer),
    ),
  );
}

/** Encodes the TBSCertificate, signs it with the issuer's signer, returns the certificate DER. */
export async function signCertificate(issuer: IssuerTemplate, parts: CertificateParts): Promise<Buffer> {
  const tbsDer = encodeTbsCertificate(issuer, parts);
  const signature = await issuer.signer.sign(tbsDer);
  return derSequence(tbsDer, issuer.signatureAlgorithmDer, derBitString(signature));
}

/** Key id of a certificate as meshca reports it: hex of the SKI computed from its key. */
export function keyIdOf(certDer: Uint8Array): string {
  return subjectKeyIdentifier(certificateFields(certDer).spkiDer).toString('hex');
}
