// Rotation inside `meshca serve`: follows the key store (a change by any process is served within
// the reload bound), runs intermediate auto-rotation on schedule, and warns before CA certificates
// expire. Swaps the signing state in place; never restarts anything, never logs key material.

import { Counter, Gauge, type Registry } from 'prom-client';
import { describeError, isMeshcaError } from '../errors/index.ts';
import type { LedgerWriter } from '../ledger/index.ts';
import type { Logger } from '../observability/index.ts';
import type { KeyCustody, KeyType, SigningAuthority } from '../pki/index.ts';
import { DAY_MS, formatDuration, HOUR_MS, SECOND_MS, type Clock } from '../time/index.ts';
import type { X509Certificate } from 'node:crypto';
import { authorityFromSnapshot, type LoadedAuthority } from './authority.ts';
import type { KeyStore } from './key_store.ts';
import { rotateIntermediate, type RotationContext } from './operations.ts';
import { nextIntermediateStep, type RotationPolicy } from './schedule.ts';

export const DEFAULT_KEYS_POLL_MS = SECOND_MS;
export const DEFAULT_ROTATION_CHECK_MS = 30 * SECOND_MS;
export const DEFAULT_ROOT_EXPIRY_WARNING_MS = 30 * DAY_MS;
export const DEFAULT_CA_EXPIRY_WARNING_MS = 7 * DAY_MS;
/** A standing expiry warning is repeated this often, not on every check. */
const WARNING_REPEAT_MS = HOUR_MS;

/** The part of the server's CaState rotation drives. */
export interface SwappableCaState {
  readonly authority: SigningAuthority;
  update(authority: SigningAuthority, extraIssuers?: readonly X509Certificate[]): void;
}

export interface RotationRuntimeOptions {
  readonly store: KeyStore;
  readonly state: SwappableCaState;
  /** Version of the state the server started with. */
  readonly startVersion: number;
  readonly clock: Clock;
  readonly log: Logger;
  readonly registry: Registry;
  readonly ledger: LedgerWriter;
  readonly policy: RotationPolicy;
  readonly organization: string;
  readonly trustDomain: string;
  readonly caTtlMs: number;
  readonly rootTtlMs: number;
  readonly keyType: KeyType;
  /** Whether this replica rotates intermediates on schedule: always, never, or while it leads. */
  readonly autoRotateIntermediates: boolean | (() => boolean);
  /** Signs with (and makes intermediates' keys in) a token when --signer names one; default memory. */
  readonly custody?: KeyCustody;
  readonly pollMs?: number;
  /** Also called on every poll: whatever else serve follows in the key store (the runtime deny list). */
  readonly onPoll?: () => void;
  readonly checkMs?: number;
  readonly rootExpiryWarningMs?: number;
  readonly caExpiryWarningMs?: number;
}

export interface RotationRuntime {
  /** The key store version being served. */
  readonly version: number;
  /** Re-reads the key store now if it changed; resolves true when the served state was swapped. */
  reload(): boolean;
  /** One scheduler pass: intermediate rotation if due, expiry warnings. */
  check(): Promise<void>;
  /** /readyz: the active chain (intermediate and root) is within its validity. */
  readiness(): { ok: true } | { ok: false; reason: string };
  stop(): void;
}

function sameAuthority(a: SigningAuthority, b: SigningAuthority): boolean {
  return a.keyId === b.keyId && a.rootsPem.join('') === b.rootsPem.join('');
}

export function startRotationRuntime(o: RotationRuntimeOptions): RotationRuntime {
  const reloads = new Counter({ name: 'meshca_key_store_reloads_total', help: 'key store changes picked up by this serve (result = ok | error)', labelNames: ['result'], registers: [o.registry] });
  const versionGauge = new Gauge({ name: 'meshca_key_store_version', help: 'rotation state version being served', registers: [o.registry], aggregator: 'min' });
  const bundleRoots = new Gauge({ name: 'meshca_trust_bundle_roots', help: 'roots in the trust bundle being distributed', registers: [o.registry], aggregator: 'max' });
  const expiring = new Gauge({
    name: 'meshca_ca_cert_expiring',
    help: '1 when the CA certificate is within its warning threshold of expiry (cert = root | intermediate)',
    labelNames: ['cert'],
    registers: [o.registry],
    aggregator: 'max',
  });
  const rootWarnMs = o.rootExpiryWarningMs ?? DEFAULT_ROOT_EXPIRY_WARNING_MS;
  const caWarnMs = o.caExpiryWarningMs ?? DEFAULT_CA_EXPIRY_WARNING_MS;
  let version = o.startVersion;
  let token = o.store.changeToken();
  let lastError: string | undefined;
  const lastWarnedAt = new Map<string, number>();
  versionGauge.set(version);
  bundleRoots.set(o.state.authority.rootsPem.length);

  const ctx: RotationContext = {
    store: o.store,
    clock: o.clock,
    policy: o.policy,
    ledger: o.ledger,
    actor: 'scheduler',
    organization: o.organization,
    rootTtlMs: o.rootTtlMs,
    caTtlMs: o.caTtlMs,
    trustDomain: o.trustDomain,
    ...(o.custody ? { custody: o.custody } : {}),
  };

  const apply = (loaded: LoadedAuthority) => {
    const before = o.state.authority;
    version = loaded.version;
    versionGauge.set(version);
    bundleRoots.set(loaded.authority.rootsPem.length);
    // Issuers for mTLS renewal may change without the signing chain changing; update either way.
    o.state.update(loaded.authority, loaded.extraIssuers);
    if (!sameAuthority(before, loaded.authority)) {
      o.log.info(
        { version, issuerKeyId: loaded.authority.keyId, rootKeyId: loaded.authority.rootKeyId, bundleRoots: loaded.authority.rootsPem.length },
        'key store changed; now signing with and distributing the new state',
      );
    }
  };

  const reload = (): boolean => {
    const next = o.store.changeToken();
    if (next === token) return false;
    try {
      const loaded = authorityFromSnapshot(o.store.snapshot(o.clock.now()), o.clock.now(), o.custody);
      token = next;
      lastError = undefined;
      reloads.inc({ result: 'ok' });
      apply(loaded);
      return true;
    } catch (err) {
      // Often a write in progress by another process; the next poll sees the finished store.
      reloads.inc({ result: 'error' });
      const reason = describeError(err);
      if (reason !== lastError) o.log.warn({ reason }, 'key store changed but cannot be loaded yet; still serving the previous state');
      lastError = reason;
      return false;
    }
  };

  const warnExpiry = (cert: 'root' | 'intermediate', notAfterMs: number, thresholdMs: number, nowMs: number) => {
    const leftMs = notAfterMs - nowMs;
    const soon = leftMs <= thresholdMs;
    expiring.set({ cert }, soon ? 1 : 0);
    if (!soon) return;
    const last = lastWarnedAt.get(cert) ?? -Infinity;
    if (nowMs - last < WARNING_REPEAT_MS) return;
    lastWarnedAt.set(cert, nowMs);
    const what = cert === 'root' ? 'rotate the root ("meshca root prepare", see docs/rotation.md)' : 'the intermediate is rotated automatically when meshca holds the root key; otherwise rotate the root';
    o.log.warn({ cert, notAfter: new Date(notAfterMs).toISOString(), leftMs }, `the ${cert} CA certificate expires in ${leftMs > 0 ? formatDuration(Math.floor(leftMs / 1000) * 1000) : 'the past'}; ${what}`);
  };

  const check = async () => {
    reload();
    const nowMs = o.clock.now();
    if (typeof o.autoRotateIntermediates === 'function' ? o.autoRotateIntermediates() : o.autoRotateIntermediates) {
      try {
        const snapshot = o.store.snapshot(nowMs);
        if (nextIntermediateStep(snapshot.state, nowMs, o.policy).step !== 'none') {
          const done = await rotateIntermediate(ctx, { keyType: o.keyType });
          if (done.step !== 'none') o.log.info({ step: done.step, keyId: done.keyId }, `intermediate rotation: ${done.step}`);
          reload();
        }
      } catch (err) {
        const level = isMeshcaError(err, 'ROTATION_REFUSED') ? 'info' : 'warn';
        o.log[level]({ reason: describeError(err) }, 'intermediate rotation did not run');
      }
    }
    const a = o.state.authority;
    warnExpiry('root', Date.parse(a.root.validTo), rootWarnMs, nowMs);
    warnExpiry('intermediate', a.notAfterMs, caWarnMs, nowMs);
  };

  const poll = o.clock.every(o.pollMs ?? DEFAULT_KEYS_POLL_MS, () => {
    reload();
    o.onPoll?.();
  });
  let checking = false;
  const scheduler = o.clock.every(o.checkMs ?? DEFAULT_ROTATION_CHECK_MS, () => {
    if (checking) return;
    checking = true;
    void check().finally(() => (checking = false));
  });
  void check();

  return {
    get version() {
      return version;
    },
    reload,
    check,
    readiness() {
      const a = o.state.authority;
      const nowMs = o.clock.now();
      if (nowMs >= a.notAfterMs) return { ok: false, reason: `the active intermediate expired at ${new Date(a.notAfterMs).toISOString()}` };
      if (nowMs >= Date.parse(a.root.validTo)) return { ok: false, reason: `the active root expired at ${new Date(a.root.validTo).toISOString()}` };
      return { ok: true };
    },
    stop() {
      poll.cancel();
      scheduler.cancel();
    },
  };
}
