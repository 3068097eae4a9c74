// Checks what the CA answered before the agent serves it: the leaf is for our key, the chain
// links to the root bundle the CA sent, and the roots are separated from the chain.
// Never includes the private key in an error.

import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { describeError, MeshcaError } from '../errors/index.ts';
import { decodeCertificates, isSelfSigned, readSigningCertificateId, readSvidSpiffeId, toPem, verifyChain } from '../pki/workload/index.ts';

export interface HeldSvid {
  readonly spiffeId: string;
  /** Leaf then intermediates, PEM: what goes into tls_certificate.certificate_chain. */
  readonly chainPem: string;
  readonly privateKeyPem: string;
  /** The trust bundle the CA sent with it: the trailing self-signed certificates. */
  readonly bundlePem: string;
  readonly serialHex: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly receivedAtMs: number;
}

function bad(message: string, cause?: unknown): MeshcaError {
  return new MeshcaError('BAD_CHAIN', `the CA's answer was not usable: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * X509-SVID §5: a leaf is trusted only with its own trust domain's bundle. The CA certificates the
 * leaf chains through name the bundle's trust domain; a chain naming none, or two, has no bundle
 * the leaf could belong to.
 */
function bundleTrustDomain(signers: readonly X509Certificate[]): string {
  const named = new Set(signers.map((c) => readSigningCertificateId(c)?.trustDomain).filter((td) => td !== undefined));
  if (named.size === 0) throw bad('no CA certificate in the chain names a trust domain (spiffe:// URI SAN), so there is no trust bundle for the leaf');
  if (named.size > 1) throw bad(`the chain's CA certificates name different trust domains (${[...named].join(', ')})`);
  return [...named][0]!;
}

/** Istio's cert_chain (leaf first, root bundle last) → a verified SVID for `privateKey`. */
export function acceptIssuedChain(certChain: readonly string[], privateKey: KeyObject, nowMs: number): HeldSvid {
  let certs: X509Certificate[];
  try {
    certs = certChain.flatMap((pem) => decodeCertificates(pem, 'cert_chain')).map((der) => new X509Certificate(der));
  } catch (err) {
    throw bad('cert_chain holds something that is not a certificate', err);
  }
  let split = certs.length;
  while (split > 1 && isSelfSigned(certs[split - 1]!)) split--;
  const chain = certs.slice(0, split);
  const roots = certs.slice(split);
  if (roots.length === 0) throw bad('cert_chain ends without a root certificate');
  const leaf = chain[0]!;
  if (!leaf.publicKey.equals(createPublicKey(privateKey))) throw bad('the certificate is not for the key this agent made');
  let spiffeId: string;
  try {
    const root = verifyChain(chain, roots, nowMs);
    spiffeId = readSvidSpiffeId(leaf, { trustDomain: bundleTrustDomain([...chain.slice(1), root]) }).uri;
  } catch (err) {
    throw bad(describeError(err), err);
  }
  return {
    spiffeId,
    chainPem: chain.map((c) => toPem(c.raw, 'CERTIFICATE')).join(''),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    bundlePem: roots.map((c) => toPem(c.raw, 'CERTIFICATE')).join(''),
    serialHex: leaf.serialNumber.toLowerCase(),
    notBeforeMs: Date.parse(leaf.validFrom),
    notAfterMs: Date.parse(leaf.validTo),
    receivedAtMs: nowMs,
  };
}

/** A PEM bundle in canonical form, so the same roots always compare (and version) equal. */
export function canonicalBundle(text: string, what: string): string {
  return decodeCertificates(text, what)
    .map((der) => toPem(der, 'CERTIFICATE'))
    .join('');
}

/**
 * The roots the CA sent, by trust domain (each meshca root names its own in a spiffe:// URI SAN):
 * those of `ownTrustDomain` (and any naming none) are the workload's own bundle; the others are
 * federated trust domains' roots, which the CA appends with --federated-in-rootca.
 */
export function splitFederatedRoots(bundlePem: string, ownTrustDomain: string): { readonly own: string; readonly federated: ReadonlyMap<string, string> } {
  let own = '';
  const federated = new Map<string, string>();
  for (const der of decodeCertificates(bundlePem, 'the trust bundle')) {
    const pem = toPem(der, 'CERTIFICATE');
    let td: string | undefined;
    try {
      td = readSigningCertificateId(new X509Certificate(der))?.trustDomain;
    } catch {
      td = undefined;
    }
    if (td === undefined || td === ownTrustDomain) own += pem;
    else federated.set(td, (federated.get(td) ?? '') + pem);
  }
  return { own, federated };
}
