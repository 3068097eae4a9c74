// The CA's trust domain is the one its certificates carry (docs/architecture.md, "Key store and
// layout"): `ca init` writes it into the CA certificates' URI SAN once, and every later command
// reads it from there. A `--trust-domain` given afterwards may only repeat it.

import { MeshcaError } from '../errors/index.ts';
import { readSigningCertificateId, type SigningAuthority } from '../pki/index.ts';
import { validateTrustDomain } from '../spiffe/index.ts';

/** The trust domain `ca init` (and a `serve` that makes a development CA) names when not told. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/**
 * The trust domain a loaded CA signs for: the SPIFFE ID in its issuing certificate's URI SAN, else
 * in the root's (an operator's intermediate may omit it). Undefined when neither names one.
 */
export function trustDomainOfAuthority(authority: Pick<SigningAuthority, 'certificate' | 'root'>): string | undefined {
  return readSigningCertificateId(authority.certificate)?.trustDomain ?? readSigningCertificateId(authority.root)?.trustDomain;
}

/**
 * Binds a command to its key store's trust domain. `given` is --trust-domain if the operator set
 * one: it must agree with the key store (a start-up error naming both otherwise), and it names the
 * trust domain only for a key store whose certificates carry none.
 */
export function bindTrustDomain(authority: Pick<SigningAuthority, 'certificate' | 'root'>, given: string | undefined, keysSource: string): string {
  if (given !== undefined) validateTrustDomain(given);
  const stored = trustDomainOfAuthority(authority);
  if (stored === undefined) {
    if (given === undefined) {
      throw new MeshcaError('BAD_CONFIG', `the CA certificates in ${keysSource} name no trust domain (no spiffe:// URI SAN); set --trust-domain to the one they sign for`);
    }
    return given;
  }
  if (given !== undefined && given !== stored) {
    throw new MeshcaError(
      'BAD_CONFIG',
      `--trust-domain ${given} disagrees with the key store ${keysSource}, whose CA is for trust domain ${stored}; drop --trust-domain (it is read from the key store) or point --keys at the CA for ${given}`,
    );
  }
  return stored;
}
