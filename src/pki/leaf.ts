// Issues leaf certificates from a signing authority: X509-SVIDs for workloads and the CA's own
// serving certificate. The hot path: no generic certificate generator, one DER encode, one sign.

import type { SigningAuthority } from './authority.ts';
import { signCertificate } from './certificate_builder.ts';
import type { KeyAlgorithm } from './key_types.ts';
import { toPem } from './pem.ts';
import { EMPTY_NAME_DER, leafSvidExtensions, leafValidity, servingExtensions, DEFAULT_BACKDATE_MS } from './profiles.ts';
import { randomSerial, serialToHex, type SerialSource } from './serial.ts';

export interface IssuedCertificate {
  readonly der: Buffer;
  readonly pem: string;
  readonly serialHex: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

export interface LeafRequest {
  /** DER SubjectPublicKeyInfo of the key being certified. */
  spkiDer: Uint8Array;
  keyAlgorithm: KeyAlgorithm;
  ttlMs: number;
  nowMs: number;
  serial?: SerialSource;
  backdateMs?: number;
}

async function issue(authority: SigningAuthority, req: LeafRequest, extensions: Buffer[]): Promise<IssuedCertificate> {
  const validity = leafValidity(req.nowMs, req.ttlMs, authority.notAfterMs, req.backdateMs ?? DEFAULT_BACKDATE_MS);
  const serial = (req.serial ?? randomSerial)();
  const der = await signCertificate(authority.template, {
    serial,
    // X.509 times have whole seconds; record what the certificate will actually say.
    notBeforeMs: Math.floor(validity.notBeforeMs / 1000) * 1000,
    notAfterMs: Math.floor(validity.notAfterMs / 1000) * 1000,
    subjectDer: EMPTY_NAME_DER,
    spkiDer: req.spkiDer,
    extensions,
  });
  return {
    der,
    pem: toPem(der, 'CERTIFICATE'),
    serialHex: serialToHex(serial),
    notBeforeMs: Math.floor(validity.notBeforeMs / 1000) * 1000,
    notAfterMs: Math.floor(validity.notAfterMs / 1000) * 1000,
  };
}

/** An X509-SVID for `spiffeUri`. The caller has authenticated the identity; this only encodes it. */
export function issueSvid(authority: SigningAuthority, spiffeUri: string, req: LeafRequest): Promise<IssuedCertificate> {
  return issue(authority, req, leafSvidExtensions(spiffeUri, req.keyAlgorithm));
}

export function issueServingCertificate(
  authority: SigningAuthority,
  names: { dnsNames: readonly string[]; ipAddresses: readonly string[] },
  req: LeafRequest,
): Promise<IssuedCertificate> {
  return issue(authority, req, servingExtensions(names.dnsNames, names.ipAddresses, req.keyAlgorithm));
}

/**
 * CreateCertificate's cert_chain: [leaf, intermediates…, trust bundle]. The bundle is ONE element
 * holding every root, as Istio's CA sends its root-cert.pem: istio-agent takes the last element as
 * its ROOTCA, so separate elements would make it trust only the last root during a rotation.
 */
export function chainWithBundle(authority: SigningAuthority, leafPem: string): string[] {
  return [leafPem, ...authority.chainPem, authority.rootsPem.join('')];
}
