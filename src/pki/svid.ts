// The one reader of a SPIFFE ID from a certificate, strict as the X509-SVID specification
// (spiffe/standards X509-SVID.md §2–§5) and go-spiffe's x509svid are. Every verifier uses it;
// nothing else reads URI SANs out of a certificate.

import type { X509Certificate } from 'node:crypto';
import { describeError, MeshcaError } from '../errors/index.ts';
import { parseSpiffeId, type SpiffeId } from '../spiffe/index.ts';
import { childrenOf, expectTlv, TAG, type Tlv } from './der.ts';

// Extension OIDs (RFC 5280 §4.2.1), as DER content bytes.
const OID_KEY_USAGE = '551d0f';
const OID_SUBJECT_ALT_NAME = '551d11';
const OID_BASIC_CONSTRAINTS = '551d13';
/** RFC 5280 §4.1: extensions are [3] EXPLICIT in TBSCertificate. */
const EXTENSIONS_TAG = 0xa3;
/** RFC 5280 §4.2.1.6: GeneralName uniformResourceIdentifier is [6] IMPLICIT IA5String. */
const URI_NAME_TAG = 0x86;

/** RFC 5280 §4.2.1.3 KeyUsage bits. */
const KEY_USAGE_BIT = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

interface SvidExtensions {
  readonly uris: readonly string[];
  /** BasicConstraints cA, parsed here: Node's `X509Certificate.ca` is false for CA:TRUE without keyCertSign. */
  readonly isCa: boolean;
  /** BasicConstraints pathLenConstraint, when present. */
  readonly pathLen: number | undefined;
  /** The KeyUsage BIT STRING (unused-bits octet first); undefined when the extension is absent. */
  readonly keyUsage: Uint8Array | undefined;
}

/** An X509Certificate, or the DER the issuer has just built (`{ raw: der }`) without parsing it into one. */
type CertificateDer = Pick<X509Certificate, 'raw'> | { readonly raw: Uint8Array };

function refuse(rule: string, cause?: unknown): never {
  throw new MeshcaError('BAD_CHAIN', `certificate is not a valid X509-SVID: ${rule}`, cause === undefined ? undefined : { cause });
}

// Walks the DER directly: asn1-schema's generic parser costs about 1 ms per certificate, and the
// issuer runs this on every certificate it signs.
function extensionsOf(cert: CertificateDer): SvidExtensions {
  try {
    const der = cert.raw;
    const tbs = childrenOf(der, expectTlv(der, 0, TAG.SEQUENCE, 'Certificate'))[0]!;
    const wrapper = childrenOf(der, tbs).find((field) => field.tag === EXTENSIONS_TAG);
    const seen = new Set<string>();
    let uris: string[] = [];
    let isCa = false;
    let pathLen: number | undefined;
    let keyUsage: Uint8Array | undefined;
    const list = wrapper ? childrenOf(der, wrapper) : [];
    if (wrapper && (list.length !== 1 || list[0]!.tag !== TAG.SEQUENCE)) refuse('its extensions are malformed');
    for (const ext of list.length === 1 ? childrenOf(der, list[0]!) : []) {
      const parts = childrenOf(der, ext);
      const oid = Buffer.from(der.subarray(parts[0]!.contentStart, parts[0]!.end)).toString('hex');
      const value = parts[parts.length - 1]!;
      if (parts[0]!.tag !== TAG.OID || value.tag !== TAG.OCTET_STRING) refuse('an extension is malformed');
      // RFC 5280 §4.2: a certificate must not include more than one instance of an extension.
      if (seen.has(oid)) refuse(`an extension (OID bytes ${oid}) appears twice`);
      seen.add(oid);
      const inner = readInner(der, value);
      if (oid === OID_SUBJECT_ALT_NAME) {
        uris = childrenOf(der, inner)
          .filter((name) => name.tag === URI_NAME_TAG)
          .map((name) => Buffer.from(der.subarray(name.contentStart, name.end)).toString('latin1'));
      } else if (oid === OID_BASIC_CONSTRAINTS) {
        const fields = childrenOf(der, inner);
        const first = fields[0];
        isCa = first !== undefined && first.tag === TAG.BOOLEAN && der[first.contentStart] !== 0;
        const limit = fields.find((f) => f.tag === TAG.INTEGER);
        if (limit) pathLen = Number.parseInt(Buffer.from(der.subarray(limit.contentStart, limit.end)).toString('hex') || '0', 16);
      } else if (oid === OID_KEY_USAGE) {
        if (inner.tag !== TAG.BIT_STRING) refuse('its KeyUsage is not a BIT STRING');
        keyUsage = der.subarray(inner.contentStart, inner.end);
      }
    }
    return { uris, isCa, pathLen, keyUsage };
  } catch (err) {
    if (err instanceof MeshcaError && err.code === 'BAD_CHAIN') throw err;
    refuse(`its DER does not parse (${describeError(err)})`, err);
  }
}

/** The one DER value an extension's OCTET STRING wraps. */
function readInner(der: Uint8Array, octets: Tlv): Tlv {
  const inner = expectTlv(der, octets.contentStart, der[octets.contentStart]!, 'extension value', octets.end);
  if (inner.end !== octets.end) refuse('an extension value has trailing bytes');
  return inner;
}

function hasUsage(keyUsage: Uint8Array | undefined, bit: number): boolean {
  if (keyUsage === undefined) return false;
  const octet = keyUsage[1 + (bit >> 3)];
  return octet !== undefined && (octet & (0x80 >> (bit & 7))) !== 0;
}

/** X509-SVID §2: exactly one URI SAN, and it is a SPIFFE ID. */
function singleSpiffeId(uris: readonly string[]): SpiffeId {
  if (uris.length === 0) refuse('it has no URI SAN');
  if (uris.length > 1) refuse(`it has ${uris.length} URI SANs; exactly one (the SPIFFE ID) is allowed`);
  try {
    return parseSpiffeId(uris[0]!);
  } catch (err) {
    refuse(`its URI SAN is not a SPIFFE ID (${describeError(err)})`, err);
  }
}

export interface SvidExpectation {
  /** The trust domain the SVID must belong to (X509-SVID §5: validate against that domain's bundle). */
  readonly trustDomain?: string;
}

/**
 * The SPIFFE ID of an X509-SVID leaf, or a BAD_CHAIN error naming the rule it breaks:
 * exactly one URI SAN holding a SPIFFE ID with a path (§2), CA:false (§4.1), digitalSignature set and
 * neither keyCertSign nor cRLSign (§4.3), and the expected trust domain where one is given.
 * Chain and validity checks stay with the caller, which knows the trusted roots and the time.
 */
export function readSvidSpiffeId(cert: CertificateDer, expect: SvidExpectation = {}): SpiffeId {
  const ext = extensionsOf(cert);
  const id = singleSpiffeId(ext.uris);
  if (id.path === '') refuse(`${id.uri} is a trust domain ID; a leaf's SPIFFE ID must have a path`);
  if (ext.isCa) refuse('a leaf must not be a CA (basicConstraints cA is true)');
  if (!hasUsage(ext.keyUsage, KEY_USAGE_BIT.digitalSignature)) refuse("a leaf must have the 'digitalSignature' key usage");
  if (hasUsage(ext.keyUsage, KEY_USAGE_BIT.keyCertSign)) refuse("a leaf must not have the 'keyCertSign' key usage");
  if (hasUsage(ext.keyUsage, KEY_USAGE_BIT.cRLSign)) refuse("a leaf must not have the 'cRLSign' key usage");
  if (expect.trustDomain !== undefined && id.trustDomain !== expect.trustDomain) {
    refuse(`${id.uri} is in trust domain ${id.trustDomain}, not ${expect.trustDomain}`);
  }
  return id;
}

/**
 * The SPIFFE ID a signing (CA) certificate carries, or undefined when it has no URI SAN (X509-SVID
 * §4.1 lets a signing certificate omit it). Where present it must be the only URI SAN and a SPIFFE
 * ID, and the certificate must be a CA with keyCertSign, as go-spiffe checks signing certificates.
 */
export function readSigningCertificateId(cert: X509Certificate): SpiffeId | undefined {
  const ext = extensionsOf(cert);
  if (!ext.isCa) refuse('a signing certificate must be a CA (basicConstraints cA is false)');
  if (!hasUsage(ext.keyUsage, KEY_USAGE_BIT.keyCertSign)) refuse("a signing certificate must have the 'keyCertSign' key usage");
  return ext.uris.length === 0 ? undefined : singleSpiffeId(ext.uris);
}

/** BasicConstraints pathLenConstraint of a CA certificate (RFC 5280 §4.2.1.9), or undefined when it sets none. */
export function readPathLenConstraint(cert: X509Certificate): number | undefined {
  return extensionsOf(cert).pathLen;
}
