// The issuance pipeline, top to bottom: check TTL → check CSR → build from the X509-SVID profile →
// sign → check the result → record in the ledger → answer. The caller has already been
// authenticated; the SPIFFE ID comes from that identity and never from the CSR.

import { X509Certificate } from 'node:crypto';
import { describeError, isMeshcaError, MeshcaError } from '../errors/index.ts';
import type { Caller } from '../authn/index.ts';
import type { IssuanceChannel, IssuanceEvent, LedgerWriter, RefusalCounter } from '../ledger/index.ts';
import {
  chainWithBundle,
  issueServingCertificate,
  issueSvid,
  parseCsrPem,
  readIssuedFields,
  readSvidSpiffeId,
  sha256Hex,
  type SerialSource,
  type SigningAuthority,
  type VerifiedCsr,
  type IssuedCertificate,
  type KeyAlgorithm,
} from '../pki/index.ts';
import type { SpiffeId } from '../spiffe/index.ts';
import type { Clock } from '../time/index.ts';
import { trustDomainOfAuthority } from './trust_domain.ts';
import { GRANTED_AT_DETAIL, grantTimeOf, type GrantLedger } from './renewal_bound.ts';
import { DEFAULT_MAX_RENEWAL_AGE_MS } from './settings/index.ts';
import { boundRenewalTtl, resolveTtl, type TtlPolicy } from './ttl.ts';

export interface IssuerDeps {
  /** The authority signing right now; read per request so rotation takes effect at once. */
  readonly authority: () => SigningAuthority;
  readonly ledger: LedgerWriter;
  readonly clock: Clock;
  readonly ttl: TtlPolicy;
  /** How long renewals over mTLS keep an identity after its last token grant; default 24h. */
  readonly maxRenewalAgeMs?: number;
  /** The ledger to look a renewal's grant up in; without one every renewal over mTLS is refused. */
  readonly grants?: GrantLedger;
  readonly serial?: SerialSource;
  /**
   * Counts refusals of callers that never authenticated (one ledger record per peer and reason
   * per interval, not per request: anyone can send those). Without it each is one record.
   */
  readonly refusals?: Pick<RefusalCounter, 'count'>;
}

export interface SvidRequest {
  readonly caller: Caller;
  readonly csrPem: string;
  /** Seconds; 0 = default. */
  readonly requestedTtlSeconds: number;
  readonly channel: IssuanceChannel;
  readonly peer?: string;
}

export interface X509Svid {
  readonly spiffeId: string;
  readonly certificate: IssuedCertificate;
  /** CreateCertificate's cert_chain: [leaf, intermediates…, trust bundle]. */
  readonly chainPem: readonly string[];
  /** Leaf then intermediates: what a TLS endpoint presents (SDS tls_certificate). */
  readonly certificateChainPem: readonly string[];
  readonly issuerKeyId: string;
  readonly rootKeyId: string;
}

/** The CA's own TLS certificate: DNS and IP names, a key the CA made, never a SPIFFE ID. */
export interface ServingCertificateRequest {
  readonly spkiDer: Uint8Array;
  readonly keyAlgorithm: KeyAlgorithm;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly ttlMs: number;
}

export interface ServingCertificate {
  readonly certificate: IssuedCertificate;
  /** Leaf then intermediates: what the CA presents, so a client holding only the root verifies it. */
  readonly certificateChainPem: readonly string[];
}

/** The serving profile, checked on the finished certificate: a TLS server leaf of the issuing CA. */
function checkServing(cert: IssuedCertificate, authority: SigningAuthority, req: ServingCertificateRequest): void {
  const x = new X509Certificate(cert.der);
  const problems: string[] = [];
  if (x.ca) problems.push('leaf is a CA');
  if (/URI:/.test(x.subjectAltName ?? '')) problems.push('carries a URI SAN');
  for (const name of req.dnsNames) if (!x.checkHost(name, { subject: 'never' })) problems.push(`does not cover ${name}`);
  for (const ip of req.ipAddresses) if (!x.checkIP(ip)) problems.push(`does not cover ${ip}`);
  if (!x.checkIssued(authority.certificate)) problems.push('issuer does not match the issuing CA');
  if (!x.publicKey.export({ format: 'der', type: 'spki' }).equals(Buffer.from(req.spkiDer))) problems.push('key differs from the one asked for');
  if (Date.parse(x.validTo) > authority.notAfterMs) problems.push('outlives its issuer');
  if (problems.length > 0) throw new MeshcaError('INTERNAL', `issued serving certificate failed its final check: ${problems.join('; ')}`);
}

/** What the ledger keeps of where a caller came from (cluster) and who asked on its behalf. */
function callerDetail(caller: Caller): Record<string, string> | undefined {
  const detail: Record<string, string> = {
    ...(caller.clusterId !== undefined ? { clusterId: caller.clusterId } : {}),
    // A renewal over mTLS names the certificate it renewed: the ledger then holds the whole chain.
    ...(caller.renewalOf !== undefined ? { renewalOf: caller.renewalOf } : {}),
    ...(caller.impersonatedBy
      ? {
          impersonatedBy: caller.impersonatedBy.spiffeId.uri,
          impersonatedByAuthenticator: caller.impersonatedBy.authenticator,
          ...(caller.impersonatedBy.podName ? { impersonatedByPod: caller.impersonatedBy.podName } : {}),
        }
      : {}),
  };
  return Object.keys(detail).length > 0 ? detail : undefined;
}

function callerFacts(caller: Caller): Partial<IssuanceEvent> {
  const detail = callerDetail(caller);
  return {
    ...(detail ? { detail } : {}),
    spiffeId: caller.spiffeId.uri,
    authenticator: caller.authenticator,
    ...(caller.namespace ? { namespace: caller.namespace } : {}),
    ...(caller.serviceAccount ? { serviceAccount: caller.serviceAccount } : {}),
    ...(caller.podName ? { podName: caller.podName } : {}),
    ...(caller.podUid ? { podUid: caller.podUid } : {}),
    ...(caller.nodeName ? { nodeName: caller.nodeName } : {}),
    ...(caller.token
      ? {
          tokenSha256: caller.token.sha256,
          ...(caller.token.jti ? { tokenJti: caller.token.jti } : {}),
          ...(caller.token.iatMs !== undefined ? { tokenIatMs: caller.token.iatMs } : {}),
          ...(caller.token.expMs !== undefined ? { tokenExpMs: caller.token.expMs } : {}),
        }
      : {}),
  };
}

/** X509-SVID §2: a leaf's SPIFFE ID has a path; the bare trust-domain ID names no workload. */
function refuseTrustDomainId(spiffeId: SpiffeId): void {
  if (spiffeId.path === '') throw new MeshcaError('BAD_SPIFFE_ID', `${spiffeId.uri} is a trust domain ID; a workload's SPIFFE ID needs a path (spiffe://${spiffeId.trustDomain}/...)`);
}

/** SHA-256 of the SPKI of every CA certificate an authority holds (issuing, chain, every root in the bundle), read once per authority. */
const authorityKeyDigests = new WeakMap<SigningAuthority, ReadonlySet<string>>();

function caKeyDigestsOf(authority: SigningAuthority): ReadonlySet<string> {
  let digests = authorityKeyDigests.get(authority);
  if (!digests) {
    const certs = [authority.certificate, ...authority.chainPem.map((pem) => new X509Certificate(pem)), ...authority.roots];
    digests = new Set(certs.map((c) => sha256Hex(c.publicKey.export({ format: 'der', type: 'spki' }))));
    authorityKeyDigests.set(authority, digests);
  }
  return digests;
}

/** A leaf for a CA's own key would let its holder act with that key as a workload: never sign one. */
function refuseCaKey(csr: VerifiedCsr, authority: SigningAuthority): void {
  if (caKeyDigestsOf(authority).has(sha256Hex(csr.spkiDer))) {
    throw new MeshcaError('BAD_CSR', "CSR is for one of this CA's own keys (a root or intermediate); make a new key pair for the workload");
  }
}

/** Read once per authority: the issuer runs this on every request. */
const authorityTrustDomains = new WeakMap<SigningAuthority, string | null>();

/** A CA signs only in the trust domain its certificates name (X509-SVID §5: a bundle belongs to one trust domain). */
function refuseForeignTrustDomain(spiffeId: SpiffeId, authority: SigningAuthority): void {
  let named = authorityTrustDomains.get(authority);
  if (named === undefined) {
    named = trustDomainOfAuthority(authority) ?? null;
    authorityTrustDomains.set(authority, named);
  }
  if (named !== null && spiffeId.trustDomain !== named) {
    throw new MeshcaError('BAD_SPIFFE_ID', `${spiffeId.uri} is not in trust domain ${named}, the only one this CA signs for`);
  }
}

/**
 * SPIFFE X509-SVID §4 and our profile, checked on the finished certificate before it leaves. Reads
 * the DER just built (strictly, with the one SVID reader) instead of parsing it again into an
 * X509Certificate, which cost ~4% of serve's CPU under load.
 */
function checkIssued(cert: IssuedCertificate, spiffeId: SpiffeId, authority: SigningAuthority, csr: VerifiedCsr): void {
  const problems: string[] = [];
  try {
    if (readSvidSpiffeId({ raw: cert.der }, { trustDomain: spiffeId.trustDomain }).uri !== spiffeId.uri) problems.push('SAN is not exactly the SPIFFE ID');
  } catch (err) {
    problems.push(describeError(err));
  }
  try {
    const fields = readIssuedFields(cert.der);
    // Names and key ids only: the signature was made a moment ago by the signer that loadSigningAuthority
    // matched to this certificate, and re-verifying it would cost as much as a second issuance.
    if (!fields.issuerDer.equals(authority.template.nameDer) || !fields.extensionsDer.some((e) => e.equals(authority.template.authorityKeyIdentifierDer))) {
      problems.push('issuer does not match the issuing CA');
    }
    if (!fields.spkiDer.equals(csr.spkiDer)) problems.push('key differs from the CSR');
    if (fields.notAfterMs !== cert.notAfterMs || fields.notBeforeMs !== cert.notBeforeMs) problems.push('validity differs from the one recorded');
    if (fields.notAfterMs > authority.notAfterMs) problems.push('outlives its issuer');
  } catch (err) {
    problems.push(`does not parse (${describeError(err)})`);
  }
  if (problems.length > 0) throw new MeshcaError('INTERNAL', `issued certificate failed its final check: ${problems.join('; ')}`);
}

export class SvidIssuer {
  readonly #deps: IssuerDeps;

  constructor(deps: IssuerDeps) {
    this.#deps = deps;
  }

  /**
   * Issues an X509-SVID to an authenticated caller. The identity in the certificate is
   * `caller.spiffeId`; whatever the CSR claims is ignored. The ledger record is durable before
   * the certificate is returned; if it cannot be written nothing is returned.
   */
  async issueWorkloadSvid(req: SvidRequest): Promise<X509Svid> {
    const startMs = this.#deps.clock.now();
    const base = {
      type: 'issuance' as const,
      channel: req.channel,
      ...(req.peer ? { peer: req.peer } : {}),
      requestedTtlSeconds: req.requestedTtlSeconds,
      ...callerFacts(req.caller),
    };
    let csr: VerifiedCsr | undefined;
    let issued: X509Svid;
    let grantedAtMs: number;
    try {
      refuseTrustDomainId(req.caller.spiffeId);
      const requestedTtlMs = resolveTtl(req.requestedTtlSeconds, this.#deps.ttl);
      // A token (or operator) grant starts a chain now; a renewal over mTLS keeps its chain's grant time, and its bound.
      const renewalOf = req.caller.renewalOf;
      grantedAtMs = renewalOf === undefined ? startMs : await grantTimeOf(this.#deps.grants, renewalOf);
      const ttlMs = renewalOf === undefined ? requestedTtlMs : boundRenewalTtl(requestedTtlMs, grantedAtMs, startMs, this.#deps.maxRenewalAgeMs ?? DEFAULT_MAX_RENEWAL_AGE_MS);
      csr = parseCsrPem(req.csrPem);
      const authority = this.#deps.authority();
      refuseForeignTrustDomain(req.caller.spiffeId, authority);
      refuseCaKey(csr, authority);
      const certificate = await issueSvid(authority, req.caller.spiffeId.uri, {
        spkiDer: csr.spkiDer,
        keyAlgorithm: csr.keyAlgorithm,
        ttlMs,
        nowMs: startMs,
        ...(this.#deps.serial ? { serial: this.#deps.serial } : {}),
      });
      checkIssued(certificate, req.caller.spiffeId, authority, csr);
      issued = {
        spiffeId: req.caller.spiffeId.uri,
        certificate,
        chainPem: chainWithBundle(authority, certificate.pem),
        certificateChainPem: [certificate.pem, ...authority.chainPem],
        issuerKeyId: authority.keyId,
        rootKeyId: authority.rootKeyId,
      };
    } catch (err) {
      await this.recordDenial(base, startMs, err, csr);
      throw err;
    }
    const detail = { ...base.detail, [GRANTED_AT_DETAIL]: new Date(grantedAtMs).toISOString() };
    await this.recordGrant({ ...base, detail }, startMs, csr.spkiDer, issued.certificate, issued);
    return issued;
  }

  /**
   * Issues the CA's own serving certificate through the same steps as an SVID: sign → check →
   * record (channel serving-cert) → answer. Nothing is returned unless the record is durable.
   */
  async issueServingCertificate(req: ServingCertificateRequest): Promise<ServingCertificate> {
    const startMs = this.#deps.clock.now();
    const base = { type: 'issuance' as const, channel: 'serving-cert' as const, authenticator: 'self', requestedTtlSeconds: Math.round(req.ttlMs / 1000) };
    const authority = this.#deps.authority();
    let issued: ServingCertificate;
    try {
      const certificate = await issueServingCertificate(
        authority,
        { dnsNames: req.dnsNames, ipAddresses: req.ipAddresses },
        { spkiDer: req.spkiDer, keyAlgorithm: req.keyAlgorithm, ttlMs: req.ttlMs, nowMs: startMs, ...(this.#deps.serial ? { serial: this.#deps.serial } : {}) },
      );
      checkServing(certificate, authority, req);
      issued = { certificate, certificateChainPem: [certificate.pem, ...authority.chainPem] };
    } catch (err) {
      await this.recordDenial(base, startMs, err, undefined);
      throw err;
    }
    await this.recordGrant(base, startMs, req.spkiDer, issued.certificate, { issuerKeyId: authority.keyId, rootKeyId: authority.rootKeyId });
    return issued;
  }

  /** Records a request refused before issuance (e.g. authentication failed). */
  async recordRefusal(
    partial: { channel: IssuanceChannel; peer?: string; requestedTtlSeconds?: number; caller?: Caller; tokenSha256?: string; detail?: Readonly<Record<string, string>> },
    err: unknown,
  ): Promise<void> {
    if (!partial.caller && this.#deps.refusals) {
      this.#deps.refusals.count({
        channel: partial.channel,
        ...(partial.peer ? { peer: partial.peer } : {}),
        errorCode: isMeshcaError(err) ? err.code : 'INTERNAL',
        reason: isMeshcaError(err) ? err.message : 'internal error',
      });
      return;
    }
    const base = {
      type: 'issuance' as const,
      channel: partial.channel,
      ...(partial.peer ? { peer: partial.peer } : {}),
      ...(partial.requestedTtlSeconds !== undefined ? { requestedTtlSeconds: partial.requestedTtlSeconds } : {}),
      ...(partial.tokenSha256 ? { tokenSha256: partial.tokenSha256 } : {}),
      ...(partial.caller ? callerFacts(partial.caller) : {}),
    };
    const detail = { ...base.detail, ...partial.detail };
    await this.recordDenial(Object.keys(detail).length > 0 ? { ...base, detail } : base, this.#deps.clock.now(), err, undefined);
  }

  /** The granted record; it must be durable before the certificate leaves (append throws if not). */
  private async recordGrant(
    base: Omit<IssuanceEvent, 'timeMs' | 'decision' | 'reason'>,
    startMs: number,
    spkiDer: Uint8Array,
    certificate: IssuedCertificate,
    keyIds: { readonly issuerKeyId: string; readonly rootKeyId: string },
  ): Promise<void> {
    await this.#deps.ledger.append({
      ...base,
      timeMs: startMs,
      decision: 'granted',
      reason: 'issued',
      csrKeySha256: sha256Hex(spkiDer),
      serial: certificate.serialHex,
      notBeforeMs: certificate.notBeforeMs,
      notAfterMs: certificate.notAfterMs,
      issuerKeyId: keyIds.issuerKeyId,
      rootKeyId: keyIds.rootKeyId,
      grantedTtlSeconds: Math.round((certificate.notAfterMs - startMs) / 1000),
    });
  }

  private async recordDenial(base: Omit<IssuanceEvent, 'timeMs' | 'decision' | 'reason'>, timeMs: number, err: unknown, csr: VerifiedCsr | undefined): Promise<void> {
    // A ledger outage must not hide the original refusal, but it is itself reported by append.
    await this.#deps.ledger
      .append({
        ...base,
        timeMs,
        decision: 'denied',
        reason: isMeshcaError(err) ? err.message : 'internal error',
        errorCode: isMeshcaError(err) ? err.code : 'INTERNAL',
        ...(csr ? { csrKeySha256: sha256Hex(csr.spkiDer) } : {}),
      })
      .catch(() => undefined);
  }
}
