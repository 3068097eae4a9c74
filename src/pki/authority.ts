// A signing authority: an issuing CA certificate, its signer, the chain up to the roots, and the
// trust bundle. Only constructed verified (key matches certificate, chain links to a root).

import { X509Certificate } from 'node:crypto';
import { MeshcaError } from '../errors/index.ts';
import { keyIdOf, makeIssuerTemplate, type IssuerTemplate } from './certificate_builder.ts';
import { verifyChain } from './chain.ts';
import { decodeCertificates, toPem } from './pem.ts';
import type { Signer } from './signer.ts';

export interface SigningAuthority {
  /** The issuing CA certificate (an intermediate, or a root signing directly). */
  readonly certificate: X509Certificate;
  readonly template: IssuerTemplate;
  /** PEMs from the issuing certificate up to (not including) the root: what follows a leaf. */
  readonly chainPem: readonly string[];
  /** Every root in the trust bundle, PEM. */
  readonly rootsPem: readonly string[];
  readonly roots: readonly X509Certificate[];
  /** The root this authority chains to. */
  readonly root: X509Certificate;
  readonly notAfterMs: number;
  readonly keyId: string;
  readonly rootKeyId: string;
}

export interface AuthorityMaterial {
  /** Issuing certificate followed by any further intermediates (cert-chain.pem order, roots allowed). */
  chainPem: string;
  /** Trust bundle: one or more roots. */
  rootsPem: string;
  signer: Signer;
  nowMs: number;
}

/** Verifies and assembles a signing authority; any inconsistency is a BAD_CHAIN error naming it. */
export function loadSigningAuthority(material: AuthorityMaterial): SigningAuthority {
  const roots = decodeCertificates(material.rootsPem, 'the root certificate file').map((d) => new X509Certificate(d));
  const rootPrints = new Set(roots.map((r) => r.fingerprint256));
  const chainAll = decodeCertificates(material.chainPem, 'the CA certificate chain').map((d) => new X509Certificate(d));
  // cert-chain.pem conventionally ends with the root; keep only what a leaf's chain needs.
  const chain = chainAll.filter((c, i) => i === 0 || !rootPrints.has(c.fingerprint256));
  const issuing = chain[0]!;
  if (!issuing.ca) throw new MeshcaError('BAD_CHAIN', 'the CA certificate is not a CA (basicConstraints CA:false)');
  const signerSpki = material.signer.publicKey.export({ format: 'der', type: 'spki' });
  const certSpki = issuing.publicKey.export({ format: 'der', type: 'spki' });
  if (!Buffer.from(signerSpki).equals(Buffer.from(certSpki))) {
    throw new MeshcaError('BAD_CHAIN', 'the CA private key does not match the CA certificate');
  }
  const root = verifyChain(chain, roots, material.nowMs);
  const chainPem = rootPrints.has(issuing.fingerprint256) ? [] : chain.map((c) => toPem(c.raw, 'CERTIFICATE'));
  return Object.freeze({
    certificate: issuing,
    template: makeIssuerTemplate(issuing.raw, material.signer),
    chainPem: Object.freeze(chainPem),
    rootsPem: Object.freeze(roots.map((r) => toPem(r.raw, 'CERTIFICATE'))),
    roots: Object.freeze(roots),
    root,
    notAfterMs: Date.parse(issuing.validTo),
    keyId: keyIdOf(issuing.raw),
    rootKeyId: keyIdOf(root.raw),
  });
}
