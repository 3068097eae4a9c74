// An in-memory CA for library-level tests: root + intermediate made by src/pki, as `ca init` does.

import { X509Certificate } from 'node:crypto';
import { createIntermediateCa, createLocalSigner, createRootCa, loadSigningAuthority, toPem, type KeyType, type SigningAuthority } from '../../src/pki/index.ts';

export interface TestAuthority {
  authority: SigningAuthority;
  rootPem: string;
  intermediatePem: string;
  root: X509Certificate;
  intermediate: X509Certificate;
}

export async function makeTestAuthority(opts: { keyType?: KeyType; nowMs?: number; caTtlMs?: number; trustDomain?: string } = {}): Promise<TestAuthority> {
  const nowMs = opts.nowMs ?? Date.now();
  const base = { trustDomain: opts.trustDomain ?? 'cluster.local', organization: 'test', keyType: opts.keyType ?? 'ec-p256', nowMs } as const;
  const root = await createRootCa({ ...base, ttlMs: 10 * 365 * 86400_000 });
  const inter = await createIntermediateCa({
    ...base,
    ttlMs: opts.caTtlMs ?? 365 * 86400_000,
    rootCertificateDer: root.certificateDer,
    rootSigner: createLocalSigner(root.privateKey),
    rootNotAfterMs: nowMs + 10 * 365 * 86400_000,
  });
  const rootPem = toPem(root.certificateDer, 'CERTIFICATE');
  const intermediatePem = toPem(inter.certificateDer, 'CERTIFICATE');
  const authority = loadSigningAuthority({ chainPem: intermediatePem + rootPem, rootsPem: rootPem, signer: createLocalSigner(inter.privateKey), nowMs });
  return { authority, rootPem, intermediatePem, root: new X509Certificate(root.certificateDer), intermediate: new X509Certificate(inter.certificateDer) };
}
