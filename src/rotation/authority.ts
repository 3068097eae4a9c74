// Turns a key store snapshot into what the server signs with: the active intermediate's verified
// SigningAuthority over the whole trust bundle, and the other still-trusted intermediates.

import { X509Certificate } from 'node:crypto';
import { decodeCertificates, LOCAL_KEY_CUSTODY, loadSigningAuthority, type KeyCustody, type SigningAuthority } from '../pki/index.ts';
import type { KeyStoreSnapshot } from './key_store.ts';
import { trustBundleRoots } from './schedule.ts';
import { activeSlotOf, isTrusted } from './slots.ts';

export interface LoadedAuthority {
  readonly authority: SigningAuthority;
  /** Intermediates other than the active one whose leaves are still accepted (mTLS renewal). */
  readonly extraIssuers: readonly X509Certificate[];
  /** The state version it was built from. */
  readonly version: number;
}

export function trustBundlePem(snapshot: KeyStoreSnapshot): string[] {
  return trustBundleRoots(snapshot.state).map((s) => snapshot.rootCertPem(s.cert.keyId));
}

/** Verified like every authority (key matches, chain links to a bundle root); throws BAD_CHAIN otherwise. */
export function authorityFromSnapshot(snapshot: KeyStoreSnapshot, nowMs: number, custody: KeyCustody = LOCAL_KEY_CUSTODY): LoadedAuthority {
  const active = activeSlotOf(snapshot.state.intermediates, 'intermediate');
  const authority = loadSigningAuthority({
    chainPem: snapshot.intermediateChainPem(active.cert.keyId),
    rootsPem: trustBundlePem(snapshot).join(''),
    signer: custody.signerFor(snapshot.intermediateKey(active.cert.keyId)),
    nowMs,
  });
  const extraIssuers = snapshot.state.intermediates
    .filter((s) => isTrusted(s) && s.cert.keyId !== active.cert.keyId)
    .map((s) => new X509Certificate(decodeCertificates(snapshot.intermediateChainPem(s.cert.keyId), 'intermediate')[0]!));
  return { authority, extraIssuers, version: snapshot.state.version };
}

/**
 * The active intermediate and root as the key store holds them, not verified: enough to read the
 * trust domain they name (bindTrustDomain) even when a rotation step is about to replace them.
 */
export function activeCertificatesOf(snapshot: KeyStoreSnapshot): { readonly certificate: X509Certificate; readonly root: X509Certificate } {
  const intermediate = activeSlotOf(snapshot.state.intermediates, 'intermediate');
  const root = activeSlotOf(snapshot.state.roots, 'root');
  return {
    certificate: new X509Certificate(decodeCertificates(snapshot.intermediateChainPem(intermediate.cert.keyId), 'intermediate')[0]!),
    root: new X509Certificate(snapshot.rootCertPem(root.cert.keyId)),
  };
}
