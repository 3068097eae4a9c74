// Renewal by mutual TLS: a client certificate this CA issued, still valid, authenticates as the
// SPIFFE ID it carries. The TLS layer only requests the certificate; it is verified here against
// the CA's current issuers, so a certificate from any other CA is refused.

import type { X509Certificate } from 'node:crypto';
import { describeError } from '../errors/index.ts';
import { readSvidSpiffeId } from '../pki/index.ts';
import { kubernetesIdentityOf, type SpiffeId } from '../spiffe/index.ts';
import type { Clock } from '../time/index.ts';
import type { Authenticator, AuthOutcome, AuthRequest } from './types.ts';

export interface MtlsAuthenticatorOptions {
  /** Intermediates (and roots) whose leaves are accepted: every CA certificate still trusted. */
  readonly issuers: () => readonly X509Certificate[];
  readonly trustDomain: string;
  readonly clock: Clock;
}

export function createMtlsAuthenticator(opts: MtlsAuthenticatorOptions): Authenticator {
  return {
    name: 'mtls',
    async authenticate(req: AuthRequest): Promise<AuthOutcome> {
      const leaf = req.peerCertificates?.[0];
      if (!leaf) return { ok: false, kind: 'skip', reason: 'no client certificate' };
      const nowMs = opts.clock.now();
      const issuer = opts.issuers().find((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
      if (!issuer) return { ok: false, kind: 'refused', reason: 'client certificate was not issued by this CA' };
      if (Date.parse(leaf.validFrom) > nowMs || Date.parse(leaf.validTo) < nowMs) {
        return { ok: false, kind: 'refused', reason: 'client certificate is expired or not yet valid' };
      }
      if (Date.parse(issuer.validTo) < nowMs) return { ok: false, kind: 'refused', reason: 'client certificate issuer has expired' };
      let id: SpiffeId;
      try {
        id = readSvidSpiffeId(leaf, { trustDomain: opts.trustDomain });
      } catch (err) {
        return { ok: false, kind: 'refused', reason: `client ${describeError(err)}` };
      }
      const k8s = kubernetesIdentityOf(id);
      return {
        ok: true,
        caller: {
          spiffeId: id,
          authenticator: 'mtls',
          ...(k8s ? { namespace: k8s.namespace, serviceAccount: k8s.serviceAccount } : {}),
          expiresAtMs: Date.parse(leaf.validTo),
          renewalOf: leaf.serialNumber.toLowerCase(),
        },
      };
    },
  };
}
