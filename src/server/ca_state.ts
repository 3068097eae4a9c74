// The CA's signing state as the server sees it: the authority signing now and the trust bundle,
// swappable at run time (rotation) with listeners told of every change.

import type { X509Certificate } from 'node:crypto';
import type { SigningAuthority } from '../pki/index.ts';

export type CaStateListener = (authority: SigningAuthority) => void;

export class CaState {
  #authority: SigningAuthority;
  /** Every CA certificate whose leaves are still accepted for mTLS renewal. */
  #issuers: readonly X509Certificate[];
  readonly #listeners = new Set<CaStateListener>();

  constructor(authority: SigningAuthority, extraIssuers: readonly X509Certificate[] = []) {
    this.#authority = authority;
    this.#issuers = [authority.certificate, ...extraIssuers];
  }

  get authority(): SigningAuthority {
    return this.#authority;
  }

  get issuers(): readonly X509Certificate[] {
    return this.#issuers;
  }

  get bundlePem(): readonly string[] {
    return this.#authority.rootsPem;
  }

  update(authority: SigningAuthority, extraIssuers: readonly X509Certificate[] = []): void {
    this.#authority = authority;
    this.#issuers = [authority.certificate, ...extraIssuers];
    for (const listener of this.#listeners) listener(authority);
  }

  subscribe(listener: CaStateListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
