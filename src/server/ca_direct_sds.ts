// CA-direct SDS, the weaker mode: proxies that cannot run an agent (gateways, VMs) open SDS on the
// CA with a bearer token, and the CA makes their key. Each stream gets its own key, issued for the
// stream's authenticated identity and renewed at half-life. Composes src/sds (the protocol) with
// src/ca and src/authn on the CA side, so src/sds stays free of them. Never logs a key or a token.

import type * as grpc from '@grpc/grpc-js';
import type { Caller } from '../authn/index.ts';
import { RenewalEngine, type CertificateWindow, type SvidIssuer } from '../ca/index.ts';
import { describeError, MeshcaError } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import { createCsrPem, generateKeyPair } from '../pki/index.ts';
import {
  addSdsService,
  createSdsMetrics,
  DEFAULT_SECRET_NAME,
  ROOTCA_SECRET_NAME,
  SecretStore,
  tlsCertificateSecret,
  trustedCaSecret,
  type OpenedSource,
  type SdsMetrics,
  type SdsSecret,
  type SdsService,
  type SecretChange,
  type SecretSource,
} from '../sds/index.ts';
import type { Clock } from '../time/index.ts';

/** SDS resource name prefix of a federated trust domain's bundle: `federated/<td>`. */
export const FEDERATED_SECRET_PREFIX = 'federated/';

/** How often the shared ROOTCA is compared with the CA's bundle (docs/architecture.md: key store changes reach every serve within 5 s). */
export const BUNDLE_REFRESH_MS = 5_000;

export interface CaDirectSdsDeps {
  readonly issuer: Pick<SvidIssuer, 'issueWorkloadSvid'> & Partial<Pick<SvidIssuer, 'recordRefusal'>>;
  /** Authenticates (and authorizes) the stream's caller from its metadata; throws MeshcaError. */
  readonly authenticate: (metadata: grpc.Metadata, call: { readonly metadata: grpc.Metadata; getPeer(): string }) => Promise<Caller>;
  /**
   * The identity policy again, for a stream already open: before every renewal and whenever the
   * runtime deny list changes (`closeDenied`). Throws PERMISSION_DENIED for a caller it stops.
   */
  readonly authorize?: (caller: Caller) => void;
  /** The CA's current trust bundle, one PEM per root. */
  readonly bundlePem: () => readonly string[];
  /** Federated trust domains' roots (--federate-with): served as `federated/<td>` secrets. */
  readonly federatedBundles?: () => ReadonlyMap<string, readonly string[]>;
  /** Also put the federated roots in ROOTCA (--federated-in-rootca), for validators that know no SPIFFE. */
  readonly federatedInRootca?: boolean;
  readonly clock: Clock;
  readonly log: Logger;
  readonly ttlMs: number;
  readonly metrics?: SdsMetrics;
  readonly random?: () => number;
}

export interface CaDirectSds {
  /** Adds SecretDiscoveryService to the CA's gRPC server. */
  register(server: grpc.Server): SdsService;
  /** Re-reads the bundle now and pushes ROOTCA to every stream if it changed (call on rotation). */
  refreshBundle(): void;
  /** Ends, with PERMISSION_DENIED, every open stream whose identity `authorize` now refuses; returns how many. */
  closeDenied(): Promise<number>;
  /** Stops the bundle refresh (streams end with the server). */
  close(): void;
}

/** One stream's secrets: its own `default`, issued on first request, and the shared ROOTCA. */
class CallerSource implements SecretSource {
  readonly #own: SecretStore;
  readonly #bundle: SecretStore;
  readonly #caller: Caller;
  readonly #peer: string;
  readonly #deps: CaDirectSdsDeps;
  readonly #engine: RenewalEngine<CertificateWindow>;
  readonly #revoke: (err: MeshcaError) => void;
  readonly #unsubscribes: Array<() => void> = [];
  #ended = false;

  constructor(caller: Caller, peer: string, bundle: SecretStore, deps: CaDirectSdsDeps, revoke: (err: MeshcaError) => void) {
    this.#own = new SecretStore(deps.clock);
    this.#caller = caller;
    this.#peer = peer;
    this.#bundle = bundle;
    this.#deps = deps;
    this.#revoke = revoke;
    this.#engine = new RenewalEngine<CertificateWindow>({
      clock: deps.clock,
      ...(deps.random ? { random: deps.random } : {}),
      obtain: () => this.#issue(),
      install: () => undefined,
      failed: (err, attempt, retryInMs) => this.#onFailure(err, attempt, retryInMs),
    });
  }

  get(name: string): SdsSecret | undefined {
    if (name === ROOTCA_SECRET_NAME || name.startsWith(FEDERATED_SECRET_PREFIX)) return this.#bundle.get(name);
    if (name !== DEFAULT_SECRET_NAME) return undefined;
    const held = this.#own.get(name);
    // The key is made only when a proxy asks for it; a ROOTCA-only stream never gets one.
    if (!held && !this.#engine.isActive && !this.#engine.isStopped) void this.#engine.renew();
    return held;
  }

  names(): readonly string[] {
    return [DEFAULT_SECRET_NAME, ...this.#bundle.names()];
  }

  subscribe(listener: (change: SecretChange) => void): () => void {
    const a = this.#own.subscribe(listener);
    const b = this.#bundle.subscribe(listener);
    const both = () => (a(), b());
    this.#unsubscribes.push(both);
    return both;
  }

  close(): void {
    this.#ended = true;
    this.#engine.stop();
    for (const u of this.#unsubscribes.splice(0)) u();
  }

  /** Ends the stream when the policy now refuses its identity; records the refusal in the ledger. */
  async closeIfDenied(): Promise<boolean> {
    if (this.#ended) return false;
    try {
      this.#deps.authorize?.(this.#caller);
      return false;
    } catch (err) {
      const denied = err instanceof MeshcaError ? err : new MeshcaError('PERMISSION_DENIED', describeError(err));
      this.close();
      this.#revoke(denied);
      this.#deps.log.warn({ spiffeId: this.#caller.spiffeId.uri, peer: this.#peer, reason: denied.message }, 'closed a CA-direct SDS stream: its identity is now denied');
      await this.#recordRefusal(denied);
      return true;
    }
  }

  async #recordRefusal(err: MeshcaError): Promise<void> {
    await this.#deps.issuer.recordRefusal?.({ channel: 'SDS', peer: this.#peer, caller: this.#caller }, err).catch((e: unknown) => {
      this.#deps.log.error({ reason: describeError(e) }, 'could not record an SDS refusal in the ledger');
    });
  }

  /** Issues this stream's certificate and publishes it; the engine schedules the renewal. */
  async #issue(): Promise<CertificateWindow> {
    const receivedAtMs = this.#deps.clock.now();
    if (this.#caller.expiresAtMs !== undefined && this.#caller.expiresAtMs <= receivedAtMs) {
      // Renewals ride on the identity proven when the stream opened; once that proof has
      // expired the proxy must reconnect and prove it again.
      throw new MeshcaError('UNAUTHENTICATED', 'the credentials this SDS stream opened with have expired; reconnect with a fresh token');
    }
    try {
      this.#deps.authorize?.(this.#caller);
    } catch (err) {
      if (err instanceof MeshcaError) await this.#recordRefusal(err);
      throw err;
    }
    const { privateKey } = generateKeyPair('ec-p256');
    const svid = await this.#deps.issuer.issueWorkloadSvid({
      caller: this.#caller,
      csrPem: createCsrPem(privateKey),
      requestedTtlSeconds: Math.round(this.#deps.ttlMs / 1000),
      channel: 'SDS',
      peer: this.#peer,
    });
    if (!this.#engine.isStopped) {
      this.#own.set(tlsCertificateSecret(DEFAULT_SECRET_NAME, svid.certificateChainPem.join(''), privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, svid.certificate.notAfterMs));
      this.#deps.log.info({ spiffeId: svid.spiffeId, serial: svid.certificate.serialHex, peer: this.#peer }, 'issued an SDS certificate with a CA-made key');
    }
    return { receivedAtMs: this.#deps.clock.now(), notBeforeMs: svid.certificate.notBeforeMs, notAfterMs: svid.certificate.notAfterMs };
  }

  /** Retries while the held certificate is valid; otherwise ends the stream (the proxy reconnects). */
  #onFailure(err: unknown, attempt: number, retryInMs: number): 'retry' | 'stop' {
    const held = this.#own.get(DEFAULT_SECRET_NAME);
    const stillValid = held?.kind === 'tls-certificate' && held.notAfterMs > this.#deps.clock.now();
    if (!stillValid || (err instanceof MeshcaError && (err.code === 'UNAUTHENTICATED' || err.code === 'PERMISSION_DENIED'))) {
      this.#revoke(err instanceof MeshcaError ? err : new MeshcaError('INTERNAL', 'could not issue a certificate', { cause: err }));
      return 'stop';
    }
    this.#deps.log.warn({ peer: this.#peer, attempt, retryInMs, reason: describeError(err) }, 'SDS certificate renewal failed; serving the current one');
    return 'retry';
  }
}


export function createCaDirectSds(deps: CaDirectSdsDeps): CaDirectSds {
  const bundle = new SecretStore(deps.clock);
  const refreshBundle = () => {
    try {
      const federated = deps.federatedBundles?.() ?? new Map<string, readonly string[]>();
      const extra = deps.federatedInRootca ? [...federated.values()].flat() : [];
      bundle.set(trustedCaSecret(ROOTCA_SECRET_NAME, [...deps.bundlePem(), ...extra].join('')));
      for (const [td, roots] of federated) bundle.set(trustedCaSecret(`${FEDERATED_SECRET_PREFIX}${td}`, roots.join('')));
    } catch (err) {
      deps.log.error({ reason: describeError(err) }, 'could not read the trust bundle for SDS');
    }
  };
  refreshBundle();
  const timer = deps.clock.every(BUNDLE_REFRESH_MS, refreshBundle);
  const openSources = new Set<CallerSource>();
  const open = async (call: { readonly metadata: grpc.Metadata; getPeer(): string }): Promise<OpenedSource> => {
    const caller = await deps.authenticate(call.metadata, call);
    refreshBundle();
    let revoke: (err: MeshcaError) => void = () => {};
    const revoked = new Promise<never>((_resolve, reject) => {
      revoke = reject;
    });
    // Nobody may be listening yet; an unobserved rejection must not crash the process.
    revoked.catch(() => undefined);
    const source = new CallerSource(caller, call.getPeer(), bundle, deps, (err) => revoke(err));
    openSources.add(source);
    return {
      source,
      close: () => {
        openSources.delete(source);
        source.close();
      },
      revoked,
    };
  };
  return {
    register(server) {
      return addSdsService(server, { source: open, log: deps.log, metrics: deps.metrics ?? createSdsMetrics(undefined, deps.clock) });
    },
    refreshBundle,
    async closeDenied() {
      const closed = await Promise.all([...openSources].map((s) => s.closeIfDenied()));
      return closed.filter(Boolean).length;
    },
    close() {
      timer.cancel();
    },
  };
}
