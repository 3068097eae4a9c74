// The agent's certificate cache: makes a key in memory, asks the CA for a certificate, serves it
// through a SecretStore, renews at about half-life with one request in flight, and backs off when
// the CA is away. Never writes the key unless file output was asked for; never logs the token.

import { join } from 'node:path';
import { describeError } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import { createCsrPem, generateKeyPair, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, writeFileAtomic, type KeyType } from '../pki/index.ts';
import { DEFAULT_SECRET_NAME, ROOTCA_SECRET_NAME, tlsCertificateSecret, trustedCaSecret, type SecretStore } from '../sds/index.ts';
import { formatDuration, type Clock, type Timer } from '../time/index.ts';
import type { CaCredential, CaClient } from './ca_client.ts';
import { acceptIssuedChain, canonicalBundle, type HeldSvid } from './issued.ts';
import { RenewalEngine } from '../ca/index.ts';

export interface AgentMetricsHooks {
  renewed(svid: HeldSvid): void;
  failed(): void;
}

export interface WorkloadAgentOptions {
  readonly clock: Clock;
  readonly log: Logger;
  readonly store: SecretStore;
  readonly ca: Pick<CaClient, 'createCertificate'>;
  /** Reads the projected token afresh (the kubelet rotates it); throws if it cannot. */
  readonly readToken: () => string;
  /** Reads the --root-cert bundle (e.g. the mounted trust-bundle ConfigMap). */
  readonly readRootFile: () => string;
  readonly ttlMs: number;
  readonly bundlePollMs: number;
  readonly outputDir?: string;
  readonly keyType?: KeyType;
  /** Uniform in [0, 1); injectable so tests can pin the jitter. */
  readonly random?: () => number;
  readonly metrics?: AgentMetricsHooks;
}

export interface AgentStatus {
  readonly ready: boolean;
  readonly spiffeId?: string;
  readonly notAfterMs?: number;
  readonly nextAttemptAtMs?: number;
  readonly consecutiveFailures: number;
  readonly lastError?: string;
}

export class WorkloadAgent {
  readonly #o: WorkloadAgentOptions;
  readonly #engine: RenewalEngine<HeldSvid>;
  /** The root bundle served as ROOTCA: whichever source changed last (CA answer or root file). */
  #bundlePem: string | undefined;
  #rootFilePem: string | undefined;
  #pollTimer: Timer | undefined;
  #lastError: string | undefined;
  readonly #firstWaiters: Array<() => void> = [];

  constructor(options: WorkloadAgentOptions) {
    this.#o = options;
    this.#engine = new RenewalEngine<HeldSvid>({
      clock: options.clock,
      ...(options.random ? { random: options.random } : {}),
      obtain: () => this.#obtain(),
      install: (svid, renewAt, previous) => this.#install(svid, renewAt, previous === undefined),
      failed: (err, attempt, retryInMs) => this.#onFailure(err, attempt, retryInMs),
    });
  }

  /** Starts fetching the first certificate (SDS requests wait for it) and polling the root file. */
  start(): void {
    this.#pollRootFile();
    this.#pollTimer = this.#o.clock.every(this.#o.bundlePollMs, () => this.#pollRootFile());
    void this.renew();
  }

  stop(): void {
    this.#engine.stop();
    this.#pollTimer?.cancel();
  }

  /** Resolves once the agent holds its first certificate. */
  firstCertificate(): Promise<void> {
    if (this.#engine.current) return Promise.resolve();
    return new Promise((resolve) => this.#firstWaiters.push(resolve));
  }

  current(): HeldSvid | undefined {
    return this.#engine.current;
  }

  /** Roots to trust when dialling the CA: the root file plus the bundle the CA last sent. */
  trustedRootsPem(): string {
    const parts = new Set([this.#rootFilePem ?? '', this.#bundlePem ?? ''].flatMap((b) => b.split(/(?<=-----END CERTIFICATE-----\n)/)).filter((p) => p.trim()));
    return [...parts].join('');
  }

  status(): AgentStatus {
    const now = this.#o.clock.now();
    const cur = this.#engine.current;
    const next = this.#engine.nextAttemptAtMs;
    return {
      ready: cur !== undefined && cur.notAfterMs > now,
      ...(cur ? { spiffeId: cur.spiffeId, notAfterMs: cur.notAfterMs } : {}),
      ...(next !== undefined ? { nextAttemptAtMs: next } : {}),
      consecutiveFailures: this.#engine.consecutiveFailures,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    };
  }

  /** Renews now unless a renewal is already in flight (then joins it). Resolves true on success. */
  async renew(): Promise<boolean> {
    return (await this.#engine.renew()).ok;
  }

  async #obtain(): Promise<HeldSvid> {
    const { privateKey } = generateKeyPair(this.#o.keyType ?? 'ec-p256');
    const csrPem = createCsrPem(privateKey);
    const chain = await this.#o.ca.createCertificate({ csrPem, ttlSeconds: Math.round(this.#o.ttlMs / 1000), credential: this.#credential() });
    return acceptIssuedChain(chain, privateKey, this.#o.clock.now());
  }

  #credential(): CaCredential {
    try {
      return { kind: 'token', token: this.#o.readToken() };
    } catch (err) {
      const cur = this.#engine.current;
      if (cur && cur.notAfterMs > this.#o.clock.now()) {
        this.#o.log.info({ reason: describeError(err) }, 'token unavailable; renewing over mTLS with the current certificate');
        return { kind: 'certificate', chainPem: cur.chainPem, privateKeyPem: cur.privateKeyPem };
      }
      throw err;
    }
  }

  #install(svid: HeldSvid, renewAt: number, first: boolean): void {
    this.#lastError = undefined;
    this.#bundlePem = svid.bundlePem;
    this.#o.store.set(
      tlsCertificateSecret(DEFAULT_SECRET_NAME, svid.chainPem, svid.privateKeyPem, svid.notAfterMs),
      trustedCaSecret(ROOTCA_SECRET_NAME, svid.bundlePem),
    );
    this.#writeFiles(svid);
    this.#o.metrics?.renewed(svid);
    this.#o.log.info(
      { spiffeId: svid.spiffeId, serial: svid.serialHex, notAfter: new Date(svid.notAfterMs).toISOString(), renewAt: new Date(renewAt).toISOString() },
      first ? 'got the first certificate' : 'renewed the certificate with a new key',
    );
    for (const resolve of this.#firstWaiters.splice(0)) resolve();
  }

  #onFailure(err: unknown, attempt: number, retryInMs: number): void {
    this.#lastError = describeError(err);
    this.#o.metrics?.failed();
    const cur = this.#engine.current;
    const leftMs = cur ? cur.notAfterMs - this.#o.clock.now() : undefined;
    const fields = { attempt, retryInMs, reason: this.#lastError, ...(leftMs !== undefined ? { certificateLeftMs: leftMs } : {}) };
    if (leftMs !== undefined && leftMs > 0) {
      this.#o.log.warn(fields, `renewal failed; still serving the current certificate, valid for another ${formatDuration(Math.round(leftMs / 1000) * 1000)}`);
    } else if (leftMs !== undefined) {
      this.#o.log.error(fields, 'renewal failed and the certificate has expired; proxies are holding an expired certificate');
    } else {
      this.#o.log.warn(fields, 'could not get the first certificate yet; SDS requests wait for it');
    }
  }

  #pollRootFile(): void {
    let text: string;
    try {
      text = canonicalBundle(this.#o.readRootFile(), 'the --root-cert file');
    } catch (err) {
      this.#o.log.warn({ reason: describeError(err) }, 'cannot read the trusted root file; keeping the current trust bundle');
      return;
    }
    if (text === this.#rootFilePem) return;
    const firstRead = this.#rootFilePem === undefined;
    this.#rootFilePem = text;
    // The first read only seeds trust for dialling the CA; ROOTCA comes from the CA's answer.
    if (firstRead || !this.#engine.current || text === this.#bundlePem) return;
    this.#bundlePem = text;
    this.#o.store.set(trustedCaSecret(ROOTCA_SECRET_NAME, text));
    if (this.#o.outputDir) writeFileAtomic(join(this.#o.outputDir, 'ca.crt'), text, PUBLIC_FILE_MODE);
    this.#o.log.info({ roots: text.split('-----BEGIN CERTIFICATE-----').length - 1 }, 'trust bundle changed in the root file; pushed ROOTCA');
  }

  #writeFiles(svid: HeldSvid): void {
    const dir = this.#o.outputDir;
    if (!dir) return;
    try {
      writeFileAtomic(join(dir, 'tls.key'), svid.privateKeyPem, PRIVATE_FILE_MODE);
      writeFileAtomic(join(dir, 'tls.crt'), svid.chainPem, PUBLIC_FILE_MODE);
      writeFileAtomic(join(dir, 'ca.crt'), svid.bundlePem, PUBLIC_FILE_MODE);
    } catch (err) {
      this.#o.log.error({ dir, reason: describeError(err) }, 'could not write the certificate files; SDS keeps serving');
    }
  }
}
