// Certificate chain checks with node:crypto: signatures link, CA flags hold, validity covers `at`.

import { X509Certificate } from 'node:crypto';
import { MeshcaError } from '../errors/index.ts';

function covers(cert: X509Certificate, atMs: number): boolean {
  return Date.parse(cert.validFrom) <= atMs && atMs <= Date.parse(cert.validTo);
}

/** A root: a CA certificate that names and signs itself. */
export function isSelfSigned(cert: X509Certificate): boolean {
  return cert.ca && cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

export function describeCert(cert: X509Certificate): string {
  return cert.subject ? cert.subject.replace(/\n/g, ', ') : (cert.subjectAltName ?? cert.serialNumber);
}

/**
 * Verifies that `chain[0]` chains through `chain[1..]` to one of `roots`, every link signed by the
 * next, every issuer a CA, every certificate valid at `atMs`. Returns the root it ended at.
 */
export function verifyChain(chain: readonly X509Certificate[], roots: readonly X509Certificate[], atMs: number): X509Certificate {
  if (chain.length === 0) throw new MeshcaError('BAD_CHAIN', 'the certificate chain is empty');
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    if (!covers(cert, atMs)) {
      throw new MeshcaError('BAD_CHAIN', `certificate ${describeCert(cert)} is not valid now (valid ${cert.validFrom} to ${cert.validTo})`);
    }
    const next = chain[i + 1];
    if (next) {
      if (!next.ca) throw new MeshcaError('BAD_CHAIN', `certificate ${describeCert(next)} is not a CA but issues ${describeCert(cert)}`);
      if (!cert.checkIssued(next) || !cert.verify(next.publicKey)) {
        throw new MeshcaError('BAD_CHAIN', `certificate ${describeCert(cert)} is not signed by ${describeCert(next)}`);
      }
    }
  }
  const last = chain[chain.length - 1]!;
  for (const root of roots) {
    if (!root.ca || !covers(root, atMs)) continue;
    if (last.fingerprint256 === root.fingerprint256) return root;
    if (last.checkIssued(root) && last.verify(root.publicKey)) return root;
  }
  throw new MeshcaError('BAD_CHAIN', `certificate ${describeCert(last)} does not chain to any trusted root`);
}
