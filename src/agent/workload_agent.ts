// The agent's certificate cache: makes a key in memory, asks the CA for a certificate, serves it
// through a SecretStore, renews at about half-life with one request in flight, and backs off when
// the CA is away. Never writes the key unless file output was asked for; never logs the token.

import { join } from 'node:path';
import { describeError } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import { createCsrPem, generateKeyPair, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, writeFileAtomic, type KeyType } from '../pki/index.ts';
import { DEFAULT_SECRET_NAME, ROOTCA_SECRET_NAME, tlsCertificateSecret, trustedCaSecret, type SecretStore } from '../sds/index.ts';
import { formatDuration, type Clock } from '../time/index.ts';
import type { CaCredential, CaClient } from './ca_client.ts';
import { acceptIssuedChain, canonicalBundle, type HeldSvid } from './issued.ts';
import { backoffDelayMs, renewAtMs } from '../ca/index.ts';

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
  readonly #random: () => number;
  #current: HeldSvid | undefined;
  /** The root bundle served as ROOTCA: whichever source changed last (CA answer or root file). */
  #bundlePem: string | undefined;
  #rootFilePem: string | undefined;
  #inFlight: Promise<boolean> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Bumped whenever a timer is set; a timer that fires with an older number is stale. */
  #timerGeneration = 0;
  #nextAttemptAtMs: number | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  #lastError: string | undefined;
  #stopped = false;
  readonly #firstWaiters: Array<() => void> = [];

  constructor(options: WorkloadAgentOptions) {
    this.#o = options;
    this.#random = options.random ?? Math.random;
  }

  /** Starts fetching the first certificate (SDS requests wait for it) and polling the root file. */
  start(): void {
    this.#pollRootFile();
    this.#pollTimer = setInterval(() => this.#pollRootFile(), this.#o.bundlePollMs);
    void this.renew();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#pollTimer);
    this.#timerGeneration++;
  }

  /** Resolves once the agent holds its first certificate. */
  firstCertificate(): Promise<void> {
    if (this.#current) return Promise.resolve();
    return new Promise((resolve) => this.#firstWaiters.push(resolve));
  }

  current(): HeldSvid | undefined {
    return this.#current;
  }

  /** Roots to trust when dialling the CA: the root file plus the bundle the CA last sent. */
  trustedRootsPem(): string {
    const parts = new Set([this.#rootFilePem ?? '', this.#bundlePem ?? ''].flatMap((b) => b.split(/(?<=-----END CERTIFICATE-----\n)/)).filter((p) => p.trim()));
    return [...parts].join('');
  }

  status(): AgentStatus {
    const now = this.#o.clock.now();
    const cur = this.#current;
    return {
      ready: cur !== undefined && cur.notAfterMs > now,
      ...(cur ? { spiffeId: cur.spiffeId, notAfterMs: cur.notAfterMs } : {}),
      ...(this.#nextAttemptAtMs !== undefined ? { nextAttemptAtMs: this.#nextAttemptAtMs } : {}),
      consecutiveFailures: this.#failures,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    };
  }

  /** Renews now unless a renewal is already in flight (then joins it). Resolves true on success. */
  renew(): Promise<boolean> {
    if (!this.#inFlight) {
      this.#inFlight = this.#renewOnce().finally(() => {
        this.#inFlight = undefined;
      });
    }
    return this.#inFlight;
  }

  async #renewOnce(): Promise<boolean> {
    if (this.#stopped) return false;
    try {
      const { privateKey } = generateKeyPair(this.#o.keyType ?? 'ec-p256');
      const csrPem = createCsrPem(privateKey);
      const chain = await this.#o.ca.createCertificate({ csrPem, ttlSeconds: Math.round(this.#o.ttlMs / 1000), credential: this.#credential() });
      const svid = acceptIssuedChain(chain, privateKey, this.#o.clock.now());
      if (this.#stopped) return false;
      this.#install(svid);
      return true;
    } catch (err) {
      if (!this.#stopped) this.#onFailure(err);
      return false;
    }
  }

  #credential(): CaCredential {
    try {
      return { kind: 'token', token: this.#o.readToken() };
    } catch (err) {
      const cur = this.#current;
      if (cur && cur.notAfterMs > this.#o.clock.now()) {
        this.#o.log.info({ reason: describeError(err) }, 'token unavailable; renewing over mTLS with the current certificate');
        return { kind: 'certificate', chainPem: cur.chainPem, privateKeyPem: cur.privateKeyPem };
      }
      throw err;
    }
  }

  #install(svid: HeldSvid): void {
    const first = this.#current === undefined;
    this.#current = svid;
    this.#failures = 0;
    this.#lastError = undefined;
    this.#bundlePem = svid.bundlePem;
    this.#o.store.set(
      tlsCertificateSecret(DEFAULT_SECRET_NAME, svid.chainPem, svid.privateKeyPem, svid.notAfterMs),
      trustedCaSecret(ROOTCA_SECRET_NAME, svid.bundlePem),
    );
    this.#writeFiles(svid);
    const renewAt = renewAtMs(svid.receivedAtMs, svid.notBeforeMs, svid.notAfterMs, this.#random());
    this.#schedule(renewAt);
    this.#o.metrics?.renewed(svid);
    this.#o.log.info(
      { spiffeId: svid.spiffeId, serial: svid.serialHex, notAfter: new Date(svid.notAfterMs).toISOString(), renewAt: new Date(renewAt).toISOString() },
      first ? 'got the first certificate' : 'renewed the certificate with a new key',
    );
    if (first) for (const resolve of this.#firstWaiters.splice(0)) resolve();
  }

  #onFailure(err: unknown): void {
    this.#failures += 1;
    this.#lastError = describeError(err);
    this.#o.metrics?.failed();
    const now = this.#o.clock.now();
    const delayMs = backoffDelayMs(this.#failures, this.#random());
    this.#schedule(now + delayMs);
    const leftMs = this.#current ? this.#current.notAfterMs - now : undefined;
    const fields = { attempt: this.#failures, retryInMs: delayMs, reason: this.#lastError, ...(leftMs !== undefined ? { certificateLeftMs: leftMs } : {}) };
    if (leftMs !== undefined && leftMs > 0) {
      this.#o.log.warn(fields, `renewal failed; still serving the current certificate, valid for another ${formatDuration(Math.round(leftMs / 1000) * 1000)}`);
    } else if (leftMs !== undefined) {
      this.#o.log.error(fields, 'renewal failed and the certificate has expired; proxies are holding an expired certificate');
    } else {
      this.#o.log.warn(fields, 'could not get the first certificate yet; SDS requests wait for it');
    }
  }

  #schedule(atMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    const generation = ++this.#timerGeneration;
    this.#nextAttemptAtMs = atMs;
    this.#timer = setTimeout(() => {
      // A timer replaced by a newer schedule (e.g. a manual renewal finished first) does nothing.
      if (generation !== this.#timerGeneration) return;
      void this.renew();
    }, Math.max(0, atMs - this.#o.clock.now()));
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
    if (firstRead || !this.#current || text === this.#bundlePem) return;
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
