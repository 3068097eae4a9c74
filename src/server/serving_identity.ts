// The CA's own TLS identity: a serving certificate issued from the current intermediate at start,
// renewed at half its life and whenever the signing chain changes, handed to grpc-js through its
// CertificateProvider interface so renewal needs no restart. The serving key stays in memory.

import type { experimental } from '@grpc/grpc-js';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { generateKeyPair, issueServingCertificate, keyAlgorithmOf, type IssuedCertificate, type SigningAuthority } from '../pki/index.ts';
import type { Clock } from '../time/index.ts';
import { HOUR_MS } from '../time/index.ts';
import type { CaState } from './ca_state.ts';

export const SERVING_CERT_TTL_MS = 24 * HOUR_MS;
export const SERVING_IP_ADDRESSES = ['127.0.0.1', '::1'] as const;

type IdentityListener = experimental.IdentityCertificateUpdateListener;
type CaListener = experimental.CaCertificateUpdateListener;

export function servingDnsNames(namespace: string, extra: readonly string[]): string[] {
  return [...new Set(['meshca', `meshca.${namespace}.svc`, 'localhost', ...extra])];
}

export interface ServingIdentityOptions {
  readonly state: CaState;
  readonly dnsNames: readonly string[];
  readonly clock: Clock;
  readonly onIssued?: (cert: IssuedCertificate, authority: SigningAuthority) => void;
  readonly onError?: (err: unknown) => void;
}

export class ServingIdentity implements experimental.CertificateProvider {
  readonly #opts: ServingIdentityOptions;
  readonly #identityListeners = new Set<IdentityListener>();
  readonly #caListeners = new Set<CaListener>();
  #current?: { certificate: Buffer; privateKey: Buffer; notAfterMs: number };
  #timer?: NodeJS.Timeout;
  #unsubscribe?: () => void;

  constructor(opts: ServingIdentityOptions) {
    this.#opts = opts;
  }

  get notAfterMs(): number | undefined {
    return this.#current?.notAfterMs;
  }

  /** Issues the first certificate; call before the server binds. */
  async start(): Promise<void> {
    await this.renew();
    this.#unsubscribe = this.#opts.state.subscribe(() => {
      void this.renew().catch((err) => this.#opts.onError?.(err));
    });
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#unsubscribe?.();
  }

  async renew(): Promise<void> {
    const authority = this.#opts.state.authority;
    const { privateKey } = generateKeyPair('ec-p256');
    const nowMs = this.#opts.clock.now();
    const cert = await issueServingCertificate(
      authority,
      { dnsNames: this.#opts.dnsNames, ipAddresses: SERVING_IP_ADDRESSES },
      { spkiDer: spkiOf(privateKey), keyAlgorithm: keyAlgorithmOf(privateKey), ttlMs: SERVING_CERT_TTL_MS, nowMs },
    );
    // Present the intermediate(s) too, so a client holding only the root can verify us.
    this.#current = {
      certificate: Buffer.from([cert.pem, ...authority.chainPem].join('')),
      privateKey: Buffer.from(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string),
      notAfterMs: cert.notAfterMs,
    };
    this.#opts.onIssued?.(cert, authority);
    for (const l of this.#identityListeners) l({ certificate: this.#current.certificate, privateKey: this.#current.privateKey });
    const bundle = { caCertificate: Buffer.from(authority.rootsPem.join('')) };
    for (const l of this.#caListeners) l(bundle);
    this.schedule(cert.notAfterMs - nowMs);
  }

  private schedule(lifetimeMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      void this.renew().catch((err) => {
        this.#opts.onError?.(err);
        this.schedule(2 * 60_000); // retry soon; the current certificate is still valid
      });
    }, Math.max(1000, lifetimeMs / 2));
    this.#timer.unref();
  }

  // grpc-js registers its own watcher only after adding these listeners, so the first update is
  // delivered on a microtask (as its FileWatcherCertificateProvider does), or it would be lost.
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.#current && this.#identityListeners.has(listener)) listener({ certificate: this.#current.certificate, privateKey: this.#current.privateKey });
    });
  }
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener);
  }
  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    queueMicrotask(() => {
      if (this.#caListeners.has(listener)) listener({ caCertificate: Buffer.from(this.#opts.state.authority.rootsPem.join('')) });
    });
  }
  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
  }
}

function spkiOf(key: KeyObject): Buffer {
  return createPublicKey(key).export({ format: 'der', type: 'spki' });
}
