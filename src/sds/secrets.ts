// The secrets SDS serves and the store that holds them: current secrets by name, plus change
// notifications. The agent and the CA-direct mode both feed a store; the SDS service only reads.
// A secret holds a private key in memory: never log one, never put one in an error.

import { createHash } from 'node:crypto';
import { systemClock, type Clock } from '../time/index.ts';

/** Envoy's resource type for secrets (envoy.extensions.transport_sockets.tls.v3.Secret). */
export const SECRET_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
/** Istio's resource names, which Envoy configurations in the wild already use. */
export const DEFAULT_SECRET_NAME = 'default';
export const ROOTCA_SECRET_NAME = 'ROOTCA';

const VERSION_HEX_CHARS = 16;

export type SdsSecret =
  | {
      readonly kind: 'tls-certificate';
      readonly name: string;
      /** Content hash of the chain: the same certificate always has the same version. */
      readonly version: string;
      /** Leaf first, then intermediates (PEM). */
      readonly chainPem: string;
      readonly privateKeyPem: string;
      readonly notAfterMs: number;
    }
  | {
      readonly kind: 'trusted-ca';
      readonly name: string;
      readonly version: string;
      /** One or more root certificates (PEM). */
      readonly bundlePem: string;
    };

export interface SecretChange {
  /** Names whose secret was added or replaced by a different version. */
  readonly changed: readonly string[];
  /** Names whose secret no longer exists. */
  readonly removed: readonly string[];
  /** When the store made the change (its Clock), for the push latency metric. */
  readonly atMs?: number;
}

/** What the SDS service reads: the current secrets, and a way to hear about changes. */
export interface SecretSource {
  get(name: string): SdsSecret | undefined;
  names(): readonly string[];
  /** Returns the unsubscribe function. Listeners run synchronously after each change. */
  subscribe(listener: (change: SecretChange) => void): () => void;
}

function versionOf(content: string): string {
  return createHash('sha256').update(content).digest('hex').slice(0, VERSION_HEX_CHARS);
}

export function tlsCertificateSecret(name: string, chainPem: string, privateKeyPem: string, notAfterMs: number): SdsSecret {
  // The version hashes the chain only: a new key always comes with a new certificate.
  return Object.freeze({ kind: 'tls-certificate', name, version: versionOf(chainPem), chainPem, privateKeyPem, notAfterMs });
}

export function trustedCaSecret(name: string, bundlePem: string): SdsSecret {
  return Object.freeze({ kind: 'trusted-ca', name, version: versionOf(bundlePem), bundlePem });
}

/** An in-memory secret store. Setting a secret of the same version is not a change. */
export class SecretStore implements SecretSource {
  readonly #secrets = new Map<string, SdsSecret>();
  readonly #listeners = new Set<(change: SecretChange) => void>();
  readonly #clock: Clock;

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  get(name: string): SdsSecret | undefined {
    return this.#secrets.get(name);
  }

  names(): readonly string[] {
    return [...this.#secrets.keys()];
  }

  subscribe(listener: (change: SecretChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Replaces several secrets at once, so a stream watching all of them gets one push. */
  set(...secrets: SdsSecret[]): void {
    const changed: string[] = [];
    for (const secret of secrets) {
      if (this.#secrets.get(secret.name)?.version === secret.version) continue;
      this.#secrets.set(secret.name, secret);
      changed.push(secret.name);
    }
    if (changed.length > 0) this.#notify({ changed, removed: [], atMs: this.#clock.now() });
  }

  remove(name: string): void {
    if (this.#secrets.delete(name)) this.#notify({ changed: [], removed: [name], atMs: this.#clock.now() });
  }

  #notify(change: SecretChange): void {
    for (const listener of [...this.#listeners]) listener(change);
  }
}
