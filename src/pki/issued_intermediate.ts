// The rule for an intermediate signed elsewhere by an offline root (`meshca ca install`): before
// meshca signs with it, it must be for our key, a CA that may sign, of our trust domain, chained
// through the given chain to a root that passes the operator-root rule, allowed by every path
// length above it, and valid long enough to cover the longest leaf it may issue (--max-ttl).

import { X509Certificate, type KeyObject } from 'node:crypto';
import { describeError, MeshcaError } from '../errors/index.ts';
import { describeCert, isSelfSigned, verifyChain } from './chain.ts';
import { acceptOperatorRoot } from './operator_root.ts';
import { decodeCertificates, toPem } from './pem.ts';
import { readPathLenConstraint, readSigningCertificateId } from './svid.ts';

export interface IssuedIntermediate {
  readonly certificate: X509Certificate;
  /** The intermediate then any CAs between it and the root: cert-chain.pem without the root. */
  readonly chainPem: string;
  readonly root: X509Certificate;
  readonly rootPem: string;
}

function refuse(message: string, cause?: unknown): never {
  throw new MeshcaError('BAD_CHAIN', message, cause === undefined ? undefined : { cause });
}

const iso = (ms: number) => new Date(ms).toISOString();

export function acceptIssuedIntermediate(input: {
  readonly certPem: string;
  readonly certSource: string;
  /** Further intermediates (if any) and the root, in any order. */
  readonly chainPem: string;
  readonly chainSource: string;
  /** The public key the CSR was made for. */
  readonly publicKey: KeyObject;
  readonly trustDomain: string;
  readonly nowMs: number;
  readonly maxLeafTtlMs: number;
}): IssuedIntermediate {
  const certs = decodeCertificates(input.certPem, input.certSource).map((d) => new X509Certificate(d));
  if (certs.length !== 1) refuse(`${input.certSource} must hold exactly the intermediate's certificate (found ${certs.length}); put the rest in --chain`);
  const cert = certs[0]!;
  const spki = (k: KeyObject) => k.export({ format: 'der', type: 'spki' });
  if (!spki(cert.publicKey).equals(spki(input.publicKey))) refuse(`${input.certSource} is not for the key of the pending request (run "meshca ca csr" and have that CSR signed)`);
  let trustDomain: string | undefined;
  try {
    trustDomain = readSigningCertificateId(cert)?.trustDomain;
  } catch (err) {
    refuse(`${input.certSource} cannot sign certificates: ${describeError(err)}`, err);
  }
  if (trustDomain !== undefined && trustDomain !== input.trustDomain) refuse(`${input.certSource} is for trust domain ${trustDomain}, not ${input.trustDomain}`);

  const given = decodeCertificates(input.chainPem, input.chainSource).map((d) => new X509Certificate(d));
  const roots = given.filter(isSelfSigned);
  if (roots.length !== 1) refuse(`${input.chainSource} must end at exactly one self-signed root (found ${roots.length})`);
  const root = roots[0]!;
  const rootPem = toPem(root.raw, 'CERTIFICATE');
  acceptOperatorRoot({ certPem: rootPem, certSource: `the root in ${input.chainSource}` }, { nowMs: input.nowMs, trustDomain: input.trustDomain });
  // Order the intermediates from ours up to the root, whatever order the file had them in.
  const rest = given.filter((c) => c !== root);
  const path: X509Certificate[] = [cert];
  while (rest.length > 0) {
    const next = rest.findIndex((c) => path[path.length - 1]!.checkIssued(c));
    if (next < 0) break;
    path.push(...rest.splice(next, 1));
  }
  if (rest.length > 0) refuse(`${input.chainSource} holds ${rest.map(describeCert).join(', ')}, which is not on the path from ${input.certSource} to its root`);
  verifyChain(path, [root], input.nowMs);
  // RFC 5280 §4.2.1.9: a CA's pathLenConstraint bounds the CAs that may follow it in the path.
  const above = [...path, root];
  for (let i = 1; i < above.length; i++) {
    const limit = readPathLenConstraint(above[i]!);
    if (limit !== undefined && limit < i - 1) refuse(`${describeCert(above[i]!)} allows ${limit} CA certificate(s) below it, but ${i - 1} are on the path to ${input.certSource}`);
  }
  const neededUntilMs = input.nowMs + input.maxLeafTtlMs;
  for (const c of above) {
    if (Date.parse(c.validTo) < neededUntilMs) {
      refuse(`${describeCert(c)} expires at ${iso(Date.parse(c.validTo))}, before ${iso(neededUntilMs)}: it must cover the longest leaf lifetime (--max-ttl) from now`);
    }
  }
  return { certificate: cert, chainPem: path.map((c) => toPem(c.raw, 'CERTIFICATE')).join(''), root, rootPem };
}
