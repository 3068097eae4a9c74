// Certificate profiles: which extensions each kind of certificate carries, and its lifetime rules.
// X509-SVID (spiffe/standards X509-SVID.md) for leaves; RFC 5280 for CAs. Pure: no clock, no keys.

import * as asn1 from '@peculiar/asn1-x509';
import { MeshcaError } from '../errors/index.ts';
import { AsnConvert } from '@peculiar/asn1-schema';
import { encodeExtension, uriSanExtension } from './certificate_builder.ts';
import type { KeyAlgorithm } from './key_types.ts';

export const DEFAULT_BACKDATE_MS = 60_000;
const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const OID_COMMON_NAME = '2.5.4.3';
const OID_ORGANIZATION = '2.5.4.10';

export const EMPTY_NAME_DER = Buffer.from(AsnConvert.serialize(new asn1.Name([])));

export function distinguishedName(commonName: string, organization?: string): Buffer {
  const rdn = (oid: string, value: string) =>
    new asn1.RelativeDistinguishedName([
      new asn1.AttributeTypeAndValue({ type: oid, value: new asn1.AttributeValue({ utf8String: value }) }),
    ]);
  const name = new asn1.Name([...(organization ? [rdn(OID_ORGANIZATION, organization)] : []), rdn(OID_COMMON_NAME, commonName)]);
  return Buffer.from(AsnConvert.serialize(name));
}

function keyUsage(flags: number): Buffer {
  return encodeExtension(asn1.id_ce_keyUsage, true, new asn1.KeyUsage(flags));
}

function basicConstraints(ca: boolean, pathLen?: number): Buffer {
  return encodeExtension(
    asn1.id_ce_basicConstraints,
    true,
    new asn1.BasicConstraints(ca ? { cA: true, ...(pathLen === undefined ? {} : { pathLenConstraint: pathLen }) } : {}),
  );
}

const MTLS_EKU = encodeExtension(
  asn1.id_ce_extKeyUsage,
  false,
  new asn1.ExtendedKeyUsage([OID_SERVER_AUTH, OID_CLIENT_AUTH]),
);

const EC_LEAF_KEY_USAGE = keyUsage(asn1.KeyUsageFlags.digitalSignature);
const RSA_LEAF_KEY_USAGE = keyUsage(asn1.KeyUsageFlags.digitalSignature | asn1.KeyUsageFlags.keyEncipherment);
const LEAF_BASIC_CONSTRAINTS = basicConstraints(false);
const CA_KEY_USAGE = keyUsage(asn1.KeyUsageFlags.keyCertSign | asn1.KeyUsageFlags.cRLSign);

function subjectAltName(names: asn1.GeneralName[], critical: boolean): Buffer {
  return encodeExtension(asn1.id_ce_subjectAltName, critical, new asn1.SubjectAlternativeName(names));
}

/**
 * X509-SVID §2: exactly one URI SAN, the SPIFFE ID. §4.1: CA:false. §4.3: digitalSignature, never
 * keyCertSign/cRLSign; keyEncipherment only where the key can encipher (RSA). The subject is empty,
 * so RFC 5280 §4.2.1.6 requires the SAN extension to be critical.
 */
export function leafSvidExtensions(spiffeUri: string, key: KeyAlgorithm): Buffer[] {
  return [
    LEAF_BASIC_CONSTRAINTS,
    key.kind === 'rsa' ? RSA_LEAF_KEY_USAGE : EC_LEAF_KEY_USAGE,
    MTLS_EKU,
    uriSanExtension(spiffeUri),
  ];
}

/** Serving certificate of the CA itself: DNS and IP SANs, empty subject, mTLS usages. */
export function servingExtensions(dnsNames: readonly string[], ipAddresses: readonly string[], key: KeyAlgorithm): Buffer[] {
  return [
    LEAF_BASIC_CONSTRAINTS,
    key.kind === 'rsa' ? RSA_LEAF_KEY_USAGE : EC_LEAF_KEY_USAGE,
    MTLS_EKU,
    subjectAltName(
      [
        ...dnsNames.map((d) => new asn1.GeneralName({ dNSName: d })),
        ...ipAddresses.map((ip) => new asn1.GeneralName({ iPAddress: ip })),
      ],
      true,
    ),
  ];
}

/** X509-SVID §4.1 signing certificates: CA:true, keyCertSign + cRLSign, URI SAN of the trust domain. */
export function caExtensions(trustDomainUri: string, pathLen?: number): Buffer[] {
  return [
    basicConstraints(true, pathLen),
    CA_KEY_USAGE,
    subjectAltName([new asn1.GeneralName({ uniformResourceIdentifier: trustDomainUri })], false),
  ];
}

export interface Validity {
  notBeforeMs: number;
  notAfterMs: number;
}

/**
 * notBefore = now − backdate (clock skew cushion), notAfter = now + TTL, and never after the
 * issuer's own notAfter (a leaf must not outlive its issuer).
 */
export function leafValidity(nowMs: number, ttlMs: number, issuerNotAfterMs: number, backdateMs = DEFAULT_BACKDATE_MS): Validity {
  if (nowMs >= issuerNotAfterMs) {
    throw new MeshcaError('BAD_CHAIN', 'the issuing CA certificate has expired; rotate the intermediate');
  }
  return { notBeforeMs: nowMs - backdateMs, notAfterMs: Math.min(nowMs + ttlMs, issuerNotAfterMs) };
}
