// The one rule for a root an operator brings (`ca init --external-root-cert`, `root prepare --external-root-cert`,
// and the offline root of `ca install`): a single self-signed CA certificate that may sign, valid
// now, of our trust domain, with its key when meshca is to hold it.

import { X509Certificate, type KeyObject } from 'node:crypto';
import { describeError, MeshcaError } from '../errors/index.ts';
import { isSelfSigned } from './chain.ts';
import { decodeCertificates } from './pem.ts';
import { readSigningCertificateId } from './svid.ts';

export interface OperatorRoot {
  readonly certPem: string;
  /** Absent for an offline root: its key stays with its holder. */
  readonly key?: KeyObject;
  /** How the operator named the files, for messages: "--external-root-cert /etc/ca/root.pem". */
  readonly certSource: string;
  readonly keySource?: string;
}

function refuse(message: string, cause?: unknown): never {
  throw new MeshcaError('BAD_CHAIN', message, cause === undefined ? undefined : { cause });
}

/** Checks an operator's root against the rule and returns it; a BAD_CHAIN error names what is wrong. */
export function acceptOperatorRoot(root: OperatorRoot, expect: { readonly nowMs: number; readonly trustDomain: string }): X509Certificate {
  const certs = decodeCertificates(root.certPem, root.certSource);
  if (certs.length !== 1) refuse(`${root.certSource} must hold exactly one certificate (found ${certs.length})`);
  const cert = new X509Certificate(certs[0]!);
  if (!isSelfSigned(cert)) refuse(`${root.certSource} is not a self-signed CA certificate`);
  let trustDomain: string | undefined;
  try {
    trustDomain = readSigningCertificateId(cert)?.trustDomain;
  } catch (err) {
    refuse(`${root.certSource} cannot sign: ${describeError(err)}`, err);
  }
  if (trustDomain !== undefined && trustDomain !== expect.trustDomain) {
    refuse(`${root.certSource} is for trust domain ${trustDomain}, not ${expect.trustDomain}`);
  }
  if (root.key && !cert.checkPrivateKey(root.key)) refuse(`${root.keySource ?? 'the root key'} does not match ${root.certSource}`);
  if (Date.parse(cert.validFrom) > expect.nowMs) refuse(`${root.certSource} is not valid before ${new Date(cert.validFrom).toISOString()}`);
  if (Date.parse(cert.validTo) <= expect.nowMs) refuse(`${root.certSource} expired at ${new Date(cert.validTo).toISOString()}`);
  return cert;
}
