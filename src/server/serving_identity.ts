// The CA's own TLS identity: a serving certificate issued through SvidIssuer's pipeline (final
// check, ledger record on the serving-cert channel) from the current intermediate at start,
// renewed by the shared RenewalEngine and whenever the signing chain changes, handed to grpc-js
// through its CertificateProvider interface so renewal needs no restart. The key stays in memory.

import type { experimental } from '@grpc/grpc-js';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { RenewalEngine, type CertificateWindow, type SvidIssuer } from '../ca/index.ts';
import { generateKeyPair, keyAlgorithmOf, type IssuedCertificate } from '../pki/index.ts';
import type { Clock } from '../time/index.ts';
import { HOUR_MS } from '../time/index.ts';
import type { CaState } from './ca_state.ts';

export const SERVING_CERT_TTL_MS = 24 * HOUR_MS;
export const SERVING_IP_ADDRESSES = ['127.0.0.1', '::1'] as const;
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

type IdentityListener = experimental.IdentityCertificateUpdateListener;
type CaListener = experimental.CaCertificateUpdateListener;

/** The injection webhook's Service (deploy/base/webhook.yaml); its name is in the certificate when --injector is on. */
export const INJECTOR_SERVICE = 'meshca-injector';

/**
 * The names a client may dial the CA by. istio-agent verifies the host part of CA_ADDR
 * (security/pkg/nodeagent/caclient/providers/citadel/client.go), so every Service form is here:
 * meshca.<ns>, meshca.<ns>.svc and meshca.<ns>.svc.<cluster domain>.
 */
export function servingDnsNames(namespace: string, extra: readonly string[], clusterDomain = DEFAULT_CLUSTER_DOMAIN, injector = false): string[] {
  const webhook = injector ? [`${INJECTOR_SERVICE}.${namespace}.svc`] : [];
  return [...new Set(['meshca', `meshca.${namespace}`, `meshca.${namespace}.svc`, `meshca.${namespace}.svc.${clusterDomain}`, 'localhost', ...webhook, ...extra])];
}

export function servingIpAddresses(extra: readonly string[]): string[] {
  return [...new Set([...SERVING_IP_ADDRESSES, ...extra])];
}

export interface ServingIdentityOptions {
  readonly issuer: Pick<SvidIssuer, 'issueServingCertificate'>;
  /** Renews when the signing chain changes; the CA bundle sent to listeners comes from here. */
  readonly state: Pick<CaState, 'subscribe' | 'authority'>;
  readonly dnsNames: readonly string[];
  /** Default: SERVING_IP_ADDRESSES. */
  readonly ipAddresses?: readonly string[];
  readonly clock: Clock;
  readonly random?: () => number;
  readonly onIssued?: (cert: IssuedCertificate) => void;
  readonly onError?: (err: unknown) => void;
}

interface HeldServingCertificate extends CertificateWindow {
  readonly certificate: Buffer;
  readonly privateKey: Buffer;
  readonly issued: IssuedCertificate;
}

export class ServingIdentity implements experimental.CertificateProvider {
  readonly #opts: ServingIdentityOptions;
  readonly #engine: RenewalEngine<HeldServingCertificate>;
  readonly #identityListeners = new Set<IdentityListener>();
  readonly #caListeners = new Set<CaListener>();
  #unsubscribe?: () => void;

  constructor(opts: ServingIdentityOptions) {
    this.#opts = opts;
    this.#engine = new RenewalEngine<HeldServingCertificate>({
      clock: opts.clock,
      ...(opts.random ? { random: opts.random } : {}),
      obtain: () => this.#obtain(),
      install: (held) => this.#install(held),
      failed: (err) => this.#opts.onError?.(err),
    });
  }

  get notAfterMs(): number | undefined {
    return this.#engine.current?.notAfterMs;
  }

  /** Issues the first certificate (throws if it cannot); call before the server binds. */
  async start(): Promise<void> {
    const first = await this.#engine.renew();
    if (!first.ok) {
      this.#engine.stop();
      throw first.error;
    }
    this.#unsubscribe = this.#opts.state.subscribe(() => void this.#engine.refresh());
  }

  stop(): void {
    this.#engine.stop();
    this.#unsubscribe?.();
  }

  /** Renews now (joins a renewal in flight); resolves when done, rejects if it failed. */
  async renew(): Promise<void> {
    const outcome = await this.#engine.renew();
    if (!outcome.ok) throw outcome.error;
  }

  async #obtain(): Promise<HeldServingCertificate> {
    const { privateKey } = generateKeyPair('ec-p256');
    const receivedAtMs = this.#opts.clock.now();
    const issued = await this.#opts.issuer.issueServingCertificate({
      spkiDer: spkiOf(privateKey),
      keyAlgorithm: keyAlgorithmOf(privateKey),
      dnsNames: this.#opts.dnsNames,
      ipAddresses: this.#opts.ipAddresses ?? SERVING_IP_ADDRESSES,
      ttlMs: SERVING_CERT_TTL_MS,
    });
    return {
      certificate: Buffer.from(issued.certificateChainPem.join('')),
      privateKey: Buffer.from(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string),
      issued: issued.certificate,
      receivedAtMs,
      notBeforeMs: issued.certificate.notBeforeMs,
      notAfterMs: issued.certificate.notAfterMs,
    };
  }

  #install(held: HeldServingCertificate): void {
    this.#opts.onIssued?.(held.issued);
    for (const l of this.#identityListeners) l({ certificate: held.certificate, privateKey: held.privateKey });
    const bundle = { caCertificate: Buffer.from(this.#opts.state.authority.rootsPem.join('')) };
    for (const l of this.#caListeners) l(bundle);
  }

  // grpc-js registers its own watcher only after adding these listeners, so the first update is
  // delivered on a microtask (as its FileWatcherCertificateProvider does), or it would be lost.
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    queueMicrotask(() => {
      const held = this.#engine.current;
      if (held && this.#identityListeners.has(listener)) listener({ certificate: held.certificate, privateKey: held.privateKey });
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
