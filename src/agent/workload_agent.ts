// The agent's certificate cache: makes a key in memory, asks the CA for a certificate, serves it
// through a SecretStore, renews at about half-life with one request in flight, and backs off when
// the CA is away. Never writes the key unless file output was asked for; never logs the token.

import { join } from 'node:path';
import { describeError, isMeshcaError, MeshcaError } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import { createCsrPem, generateKeyPair, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, writeFileAtomic, type KeyType } from '../pki/workload/index.ts';
import { DEFAULT_SECRET_NAME, ROOTCA_SECRET_NAME, tlsCertificateSecret, trustedCaSecret, type SecretStore } from '../sds/index.ts';
import { formatDuration, type Clock, type Timer } from '../time/index.ts';
import type { CaCredential, CaClient } from './ca_client.ts';
import { acceptIssuedChain, canonicalBundle, splitFederatedRoots, type HeldSvid } from './issued.ts';
import { RenewalEngine, type FailureKind } from '../ca/renewal/index.ts';
import { tokenExpiryMs } from './token.ts';

/** SDS resource name prefix of a federated trust domain's bundle (SPIFFE federation). */
const FEDERATED_PREFIX = 'federated/';

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
  /** Set when the CA refuses for good (bad TTL, policy): retries are slow and a person must fix it. */
  readonly permanentError?: string;
}

/**
 * The CA's refusals that retrying cannot change: the request itself (INVALID_ARGUMENT, e.g. a TTL
 * above its maximum; a request over its size limit) or its policy (PERMISSION_DENIED). An outage,
 * an untrusted CA certificate or a refused token (the kubelet rotates it) may heal by themselves.
 */
export function classifyRenewalFailure(err: unknown): FailureKind {
  return isMeshcaError(err, 'BAD_REQUEST') || isMeshcaError(err, 'PERMISSION_DENIED') || isMeshcaError(err, 'REQUEST_TOO_LARGE') ? 'permanent' : 'transient';
}

/** What a person does about a permanent refusal. */
function fixFor(err: unknown): string {
  const message = describeError(err);
  if (/TTL/.test(message)) return "lower the agent's --ttl to at most the CA's maximum, or raise the CA's --max-ttl";
  if (isMeshcaError(err, 'PERMISSION_DENIED')) return "the CA's policy refuses this workload; change the policy or the workload's identity";
  return "fix the agent's settings (see the CA's reason)";
}

export class WorkloadAgent {
  readonly #o: WorkloadAgentOptions;
  readonly #engine: RenewalEngine<HeldSvid>;
  /** The root bundle served as ROOTCA: whichever source changed last (CA answer or root file). */
  #bundlePem: string | undefined;
  #rootFilePem: string | undefined;
  #pollTimer: Timer | undefined;
  #lastError: string | undefined;
  #permanentError: string | undefined;
  /** When the current run of failures began, to say how long it lasted once it ends. */
  #failingSinceMs: number | undefined;
  /** The expired token the log has already told about (one line per token, not per renewal). */
  #expiredTokenTold: string | undefined;
  readonly #firstWaiters: Array<() => void> = [];

  constructor(options: WorkloadAgentOptions) {
    this.#o = options;
    this.#engine = new RenewalEngine<HeldSvid>({
      clock: options.clock,
      ...(options.random ? { random: options.random } : {}),
      obtain: () => this.#obtain(),
      install: (svid, renewAt, previous) => this.#install(svid, renewAt, previous === undefined),
      failed: (err, attempt, retryInMs, kind) => this.#onFailure(err, attempt, retryInMs, kind),
      classify: classifyRenewalFailure,
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
      ...(this.#permanentError ? { permanentError: this.#permanentError } : {}),
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

  /**
   * The token while it is valid; else, while the current certificate is valid, that certificate
   * (mTLS renewal, within whatever bound the CA sets on it), saying so once per token.
   */
  #credential(): CaCredential {
    const nowMs = this.#o.clock.now();
    const cur = this.#engine.current;
    const byCertificate = (): CaCredential | undefined =>
      cur && cur.notAfterMs > nowMs ? { kind: 'certificate', chainPem: cur.chainPem, privateKeyPem: cur.privateKeyPem } : undefined;
    let token: string;
    try {
      token = this.#o.readToken();
    } catch (err) {
      const fallback = byCertificate();
      if (!fallback) throw err;
      this.#o.log.info({ reason: describeError(err) }, 'token unavailable; renewing over mTLS with the current certificate');
      return fallback;
    }
    const expMs = tokenExpiryMs(token);
    if (expMs === undefined || expMs > nowMs) return { kind: 'token', token };
    const fallback = byCertificate();
    const expired = new Date(expMs).toISOString();
    if (!fallback) {
      throw new MeshcaError('UNAUTHENTICATED', `the token in --token-file expired at ${expired} and there is no valid certificate to renew with; give the agent a fresh token`);
    }
    if (this.#expiredTokenTold !== token) {
      this.#expiredTokenTold = token;
      this.#o.log.warn(
        { tokenExpiredAt: expired, certificateNotAfter: new Date(cur!.notAfterMs).toISOString() },
        'the token in --token-file has expired; renewing over mTLS with the current certificate while it is valid. ' +
          'Give the agent a fresh token before then (the kubelet rotates projected tokens; for "meshca token mint" pass a longer --token-ttl)',
      );
    }
    return fallback;
  }

  #install(svid: HeldSvid, renewAt: number, first: boolean): void {
    if (this.#failingSinceMs !== undefined) {
      this.#o.log.info(
        { failedFor: formatDuration(Math.round((this.#o.clock.now() - this.#failingSinceMs) / 1000) * 1000), lastError: this.#lastError },
        'recovered: the CA issued a certificate again',
      );
    }
    this.#failingSinceMs = undefined;
    this.#lastError = undefined;
    this.#permanentError = undefined;
    this.#bundlePem = svid.bundlePem;
    // ROOTCA is every root the CA sent (federated ones too when the CA runs --federated-in-rootca);
    // roots of other trust domains are also served per domain as federated/<td>.
    const split = splitFederatedRoots(svid.bundlePem, svid.spiffeId.slice('spiffe://'.length).split('/')[0]!);
    for (const name of this.#o.store.names()) {
      if (name.startsWith(FEDERATED_PREFIX) && !split.federated.has(name.slice(FEDERATED_PREFIX.length))) this.#o.store.remove(name);
    }
    this.#o.store.set(
      tlsCertificateSecret(DEFAULT_SECRET_NAME, svid.chainPem, svid.privateKeyPem, svid.notAfterMs),
      trustedCaSecret(ROOTCA_SECRET_NAME, svid.bundlePem),
      ...[...split.federated].map(([td, pem]) => trustedCaSecret(`${FEDERATED_PREFIX}${td}`, pem)),
    );
    this.#writeFiles(svid);
    this.#o.metrics?.renewed(svid);
    this.#o.log.info(
      { spiffeId: svid.spiffeId, serial: svid.serialHex, notAfter: new Date(svid.notAfterMs).toISOString(), renewAt: new Date(renewAt).toISOString() },
      first ? 'got the first certificate' : 'renewed the certificate with a new key',
    );
    for (const resolve of this.#firstWaiters.splice(0)) resolve();
  }

  #onFailure(err: unknown, attempt: number, retryInMs: number, kind: FailureKind): void {
    const reason = describeError(err);
    this.#failingSinceMs ??= this.#o.clock.now();
    this.#o.metrics?.failed();
    if (kind === 'permanent') {
      // Logged once per reason, with the fix; the slow retries after it only at debug.
      const refusal = `${reason} (${fixFor(err)}; retrying every ${formatDuration(retryInMs)})`;
      const told = this.#permanentError === refusal;
      this.#lastError = reason;
      this.#permanentError = refusal;
      if (told) this.#o.log.debug({ attempt, retryInMs, reason }, 'the CA still refuses; retrying slowly');
      else this.#o.log.error({ attempt, retryInMs, reason, fix: fixFor(err) }, `the CA refuses this request and retrying will not change that: ${fixFor(err)}; retrying every ${formatDuration(retryInMs)}`);
      return;
    }
    this.#permanentError = undefined;
    this.#lastError = reason;
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
    if (this.#o.outputDir) {
      const path = join(this.#o.outputDir, 'ca.crt');
      writeFileAtomic(path, text, PUBLIC_FILE_MODE);
      this.#o.log.info({ file: path }, 'wrote the trust bundle file');
    }
    this.#o.log.info({ roots: text.split('-----BEGIN CERTIFICATE-----').length - 1 }, 'trust bundle changed in the root file; pushed ROOTCA');
  }

  #writeFiles(svid: HeldSvid): void {
    const dir = this.#o.outputDir;
    if (!dir) return;
    try {
      const files: Array<[string, string, number]> = [
        ['tls.key', svid.privateKeyPem, PRIVATE_FILE_MODE],
        ['tls.crt', svid.chainPem, PUBLIC_FILE_MODE],
        ['ca.crt', svid.bundlePem, PUBLIC_FILE_MODE],
      ];
      for (const [name, content, mode] of files) {
        writeFileAtomic(join(dir, name), content, mode);
        this.#o.log.info({ file: join(dir, name), mode: `0${mode.toString(8)}`, serial: svid.serialHex }, `wrote ${name}`);
      }
    } catch (err) {
      this.#o.log.error({ dir, reason: describeError(err) }, 'could not write the certificate files; SDS keeps serving');
    }
  }
}
