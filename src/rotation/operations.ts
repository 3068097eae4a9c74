// The rotation steps (SPIRE's manager): prepare, activate and retire a root, rotate intermediates.
// Each runs as one locked, version-checked transition on the key store, is idempotent, refuses
// with a one-line reason when unsafe, and is recorded in the ledger before it is committed.

import { X509Certificate, type KeyObject } from 'node:crypto';
import { MeshcaError } from '../errors/index.ts';
import type { CaEvent, CaEventName, LedgerWriter } from '../ledger/index.ts';
import { acceptIssuedIntermediate, acceptOperatorRoot, createIntermediateCa, createLocalSigner, createRootCa, LOCAL_KEY_CUSTODY, readSigningCertificateId, toPem, type CaPrivateKey, type IssuedIntermediate, type KeyCustody, type KeyType } from '../pki/index.ts';
import { formatDuration, type Clock } from '../time/index.ts';
import { describeExpiry, factualPolicy, type IssuedExpiry, type LedgerReader } from './facts.ts';
import { certificateFacts, type KeyStore, type KeyStoreSnapshot, type SlotMaterial } from './key_store.ts';
import {
  activationAllowedAtMs,
  leavesValidUntilMs,
  nextIntermediateStep,
  type IntermediateStep,
  type RotationPolicy,
} from './schedule.ts';
import { activateSlot, activeSlotOf, prepareSlot, retireSlot, slotsIn, supersedeSlot } from './slots.ts';
import { intermediatesUnder, type IntermediateCertificate, type IntermediateSlot, type RootCertificate, type RootSlot, type RotationState } from './state.ts';

export interface RotationContext {
  readonly store: KeyStore;
  readonly clock: Clock;
  readonly policy: RotationPolicy;
  readonly ledger: LedgerWriter;
  /** Who asks: "cli:<user>", an admin's SPIFFE ID, or "scheduler". */
  readonly actor: string;
  readonly organization: string;
  readonly rootTtlMs: number;
  readonly caTtlMs: number;
  /** Used when the active root names no trust domain. */
  readonly trustDomain: string;
  /**
   * Where root activate and retire read their facts: the ledger (what was issued, which CAs run and
   * their maximum TTL) and this CA's own maximum when it runs. Without it they go by `policy`.
   */
  readonly facts?: { readonly ledger: LedgerReader; readonly self?: { readonly maxTtlMs: number } };
  /** Where new intermediates' keys are made (default: memory, written to the key store). */
  readonly custody?: KeyCustody;
}

/** The policy a root step decides by: from the ledger's facts when there is one. */
export function rootStepPolicy(ctx: Pick<RotationContext, 'policy' | 'facts'>, state: RotationState): Promise<RotationPolicy> | RotationPolicy {
  return ctx.facts ? factualPolicy(ctx.facts.ledger, state, ctx.policy.reloadBoundMs, ctx.facts.self) : ctx.policy;
}

/** Why the wait is what it is: the certificate that sets it, or the running CAs' longest TTL. */
function waitReason(allowedAtMs: number, issued: IssuedExpiry | undefined, policy: RotationPolicy): string {
  if (issued && issued.notAfterMs >= allowedAtMs) return describeExpiry(issued);
  const source = policy.maxTtlSource ?? `the longest leaf lifetime is ${formatDuration(policy.maxLeafTtlMs)}`;
  return `${source}, and every serve takes up to ${formatDuration(policy.reloadBoundMs)} to follow the key store`;
}

const iso = (ms: number) => new Date(ms).toISOString();
const short = (keyId: string) => `${keyId.slice(0, 16)}…`;

function refused(message: string): MeshcaError {
  return new MeshcaError('ROTATION_REFUSED', message);
}

async function record(ctx: RotationContext, event: CaEventName, detail: CaEvent['detail']): Promise<void> {
  await ctx.ledger.append({ type: 'ca', timeMs: ctx.clock.now(), event, actor: ctx.actor, detail });
}

/** The trust domain the CA certificates carry (URI SAN spiffe://<td>), so new ones match. */
function trustDomainOf(root: X509Certificate, fallback: string): string {
  return readSigningCertificateId(root)?.trustDomain ?? fallback;
}

async function makeIntermediate(ctx: RotationContext, rootPem: string, rootKey: KeyObject, keyType: KeyType): Promise<{ slot: IntermediateCertificate; material: SlotMaterial }> {
  const root = new X509Certificate(rootPem);
  const made = await createIntermediateCa({
    trustDomain: trustDomainOf(root, ctx.trustDomain),
    organization: ctx.organization,
    keyType,
    ttlMs: ctx.caTtlMs,
    nowMs: ctx.clock.now(),
    rootCertificateDer: root.raw,
    rootSigner: createLocalSigner(rootKey),
    rootNotAfterMs: Date.parse(root.validTo),
    custody: ctx.custody ?? LOCAL_KEY_CUSTODY,
  });
  const certPem = toPem(made.certificateDer, 'CERTIFICATE');
  const f = certificateFacts(certPem);
  return {
    slot: { keyId: f.keyId, subject: f.subject, notBeforeMs: f.notBeforeMs, notAfterMs: f.notAfterMs, hasKey: true, rootKeyId: certificateFacts(rootPem).keyId },
    material: { certPem, key: made.privateKey },
  };
}

function offlineSlot(accepted: IssuedIntermediate, key: CaPrivateKey, rootKeyId: string): { slot: IntermediateCertificate; material: SlotMaterial } {
  const f = certificateFacts(accepted.chainPem);
  return { slot: { keyId: f.keyId, subject: f.subject, notBeforeMs: f.notBeforeMs, notAfterMs: f.notAfterMs, hasKey: true, rootKeyId }, material: { certPem: accepted.chainPem, key } };
}

export interface ExternalRoot {
  readonly certPem: string;
  readonly key: KeyObject;
}

/** An intermediate an offline root signed for the pending request (`ca csr`): the root joins without its key. */
export interface OfflineIntermediate {
  readonly certPem: string;
  readonly certSource: string;
  /** Any CAs above the intermediate and the offline root. */
  readonly chainPem: string;
  readonly chainSource: string;
  /** The pending request's key (memory or token reference) and its public key. */
  readonly key: CaPrivateKey;
  readonly publicKey: KeyObject;
}

export interface PrepareResult {
  readonly outcome: 'prepared' | 'already-prepared';
  readonly rootKeyId: string;
  readonly intermediateKeyId: string;
  readonly activationAllowedAt: string;
}

/** Makes a new root (or takes the operator's) and its intermediate; the root joins the bundle, signs nothing. */
export function prepareRoot(ctx: RotationContext, opts: { keyType: KeyType; external?: ExternalRoot; offline?: OfflineIntermediate }): Promise<PrepareResult> {
  return ctx.store.transact<PrepareResult>(async (cur) => {
    const state = cur.state;
    const already = slotsIn(state.roots, 'prepared')[0];
    if (already) {
      const intermediate = intermediatesUnder(state, already.cert.keyId)[0];
      return {
        result: { outcome: 'already-prepared' as const, rootKeyId: already.cert.keyId, intermediateKeyId: intermediate?.cert.keyId ?? '', activationAllowedAt: iso(activationAllowedAtMs(already, ctx.policy)) },
      };
    }
    const old = slotsIn(state.roots, 'superseded')[0];
    if (old) {
      throw refused(
        `refused: the previous rotation is not finished; retire root ${short(old.cert.keyId)} first (allowed from ${iso(leavesValidUntilMs(state, old, ctx.policy))})`,
      );
    }
    const nowMs = ctx.clock.now();
    const active = activeSlotOf(state.roots, 'root');
    const trustDomain = trustDomainOf(new X509Certificate(cur.rootCertPem(active.cert.keyId)), ctx.trustDomain);
    let rootPem: string;
    let rootKey: KeyObject | undefined;
    let accepted: IssuedIntermediate | undefined;
    if (opts.offline) {
      // The two-step form: the root's holder signed our CSR elsewhere; its key never comes here.
      accepted = acceptIssuedIntermediate({ ...opts.offline, trustDomain, nowMs, maxLeafTtlMs: ctx.policy.maxLeafTtlMs });
      rootPem = accepted.rootPem;
    } else if (opts.external) {
      const root = { certPem: opts.external.certPem, key: opts.external.key, certSource: '--external-root-cert', keySource: '--external-root-key' };
      const cert = acceptOperatorRoot(root, { nowMs, trustDomain });
      rootPem = toPem(cert.raw, 'CERTIFICATE');
      rootKey = opts.external.key;
    } else {
      const made = await createRootCa({ trustDomain, organization: ctx.organization, keyType: opts.keyType, ttlMs: ctx.rootTtlMs, nowMs });
      rootPem = toPem(made.certificateDer, 'CERTIFICATE');
      rootKey = made.privateKey;
    }
    const rf = certificateFacts(rootPem);
    if (state.roots.some((s) => s.cert.keyId === rf.keyId)) throw refused(`refused: root ${short(rf.keyId)} has been in this key store before; use a new key`);
    const intermediate = accepted ? offlineSlot(accepted, opts.offline!.key, rf.keyId) : await makeIntermediate(ctx, rootPem, rootKey!, opts.keyType);
    // An operator's root key is used once, for the intermediate, and kept only if meshca made it.
    const keepRootKey = !opts.external && !opts.offline;
    const rootCert: RootCertificate = { keyId: rf.keyId, subject: rf.subject, notBeforeMs: rf.notBeforeMs, notAfterMs: rf.notAfterMs, hasKey: keepRootKey };
    const rootSlot = prepareSlot(rootCert, nowMs);
    await record(ctx, 'root-prepare', { rootKeyId: rf.keyId, intermediateKeyId: intermediate.slot.keyId, external: !!opts.external || !!opts.offline, offline: !!opts.offline, notAfter: iso(rf.notAfterMs) });
    return {
      change: {
        roots: [...state.roots, rootSlot],
        intermediates: [...state.intermediates, prepareSlot(intermediate.slot, nowMs)],
        newRoots: new Map([[rf.keyId, { certPem: rootPem, ...(keepRootKey && rootKey ? { key: rootKey } : {}) }]]),
        newIntermediates: new Map([[intermediate.slot.keyId, intermediate.material]]),
      },
      result: { outcome: 'prepared' as const, rootKeyId: rf.keyId, intermediateKeyId: intermediate.slot.keyId, activationAllowedAt: iso(activationAllowedAtMs(rootSlot, ctx.policy)) },
    };
  }, () => ctx.clock.now());
}

export interface ActivateResult {
  readonly outcome: 'activated' | 'already-active';
  readonly rootKeyId: string;
  readonly previousRootKeyId?: string;
  /** Set when --force skipped the wait: what may fail, and for how long. */
  readonly warning?: string;
}

export function activateRoot(ctx: RotationContext, opts: { force: boolean }): Promise<ActivateResult> {
  return ctx.store.transact<ActivateResult>(async (cur) => {
    const state = cur.state;
    const prepared = slotsIn(state.roots, 'prepared')[0];
    const active = activeSlotOf(state.roots, 'root');
    if (!prepared) {
      if (slotsIn(state.roots, 'superseded').length > 0) return { result: { outcome: 'already-active' as const, rootKeyId: active.cert.keyId } };
      throw refused('refused: no root is prepared; run "meshca root prepare" first');
    }
    const nowMs = ctx.clock.now();
    const policy = await rootStepPolicy(ctx, state);
    const allowedAt = activationAllowedAtMs(prepared, policy);
    let warning: string | undefined;
    if (nowMs < allowedAt) {
      const left = formatDuration(Math.ceil((allowedAt - nowMs) / 1000) * 1000);
      if (!opts.force) {
        throw refused(
          `refused: the new bundle has been out only ${formatDuration(Math.floor((nowMs - prepared.preparedAtMs) / 1000) * 1000)}, and workloads may hold certificates ` +
            `issued with the old bundle until ${iso(allowedAt)} (${waitReason(allowedAt, policy.issued?.oldBundle, policy)}); ` +
            `they would reject certificates from the new root. Safe from ${iso(allowedAt)}: try again in ${left}, or pass --force`,
        );
      }
      warning =
        `activated ${left} early (--force): workloads that have not renewed since ${iso(prepared.preparedAtMs)} do not trust the new root yet ` +
        `and will fail handshakes with peers holding new certificates until they renew (up to ${left})`;
    }
    const newIntermediate = slotsIn(intermediatesUnder(state, prepared.cert.keyId), 'prepared')[0];
    if (!newIntermediate) throw new MeshcaError('BAD_CHAIN', `the prepared root ${short(prepared.cert.keyId)} has no prepared intermediate; retire nothing and prepare again`);
    // Fail before committing if the new chain would not load.
    cur.intermediateKey(newIntermediate.cert.keyId);
    const ttl = policy.maxLeafTtlMs;
    const roots: RootSlot[] = state.roots.map((s) => (s === prepared ? activateSlot(prepared, nowMs) : s === active ? supersedeSlot(active, nowMs, ttl) : s));
    const intermediates: IntermediateSlot[] = state.intermediates.map((s) => {
      if (s === newIntermediate) return activateSlot(newIntermediate, nowMs);
      if (s.state === 'active' || (s.state === 'prepared' && s.cert.rootKeyId === active.cert.keyId)) return supersedeSlot(s, nowMs, ttl);
      return s;
    });
    await record(ctx, 'root-activate', { rootKeyId: prepared.cert.keyId, previousRootKeyId: active.cert.keyId, intermediateKeyId: newIntermediate.cert.keyId, forced: warning !== undefined });
    return {
      change: { roots, intermediates },
      result: { outcome: 'activated' as const, rootKeyId: prepared.cert.keyId, previousRootKeyId: active.cert.keyId, ...(warning ? { warning } : {}) },
    };
  }, () => ctx.clock.now());
}

export interface RetireResult {
  readonly outcome: 'retired' | 'nothing-to-retire';
  readonly rootKeyId?: string;
  readonly warning?: string;
}

export function retireRoot(ctx: RotationContext, opts: { force: boolean }): Promise<RetireResult> {
  return ctx.store.transact<RetireResult>(async (cur) => {
    const state = cur.state;
    const old = slotsIn(state.roots, 'superseded')[0];
    if (!old) {
      if (slotsIn(state.roots, 'prepared').length > 0) throw refused('refused: the new root is prepared but not active yet; run "meshca root activate" first');
      return { result: { outcome: 'nothing-to-retire' as const } };
    }
    const nowMs = ctx.clock.now();
    const policy = await rootStepPolicy(ctx, state);
    const validUntil = leavesValidUntilMs(state, old, policy);
    let warning: string | undefined;
    if (nowMs < validUntil) {
      if (!opts.force) {
        throw refused(
          `refused: certificates from the old chain (root ${short(old.cert.keyId)}) can be valid until ${iso(validUntil)} ` +
            `(${waitReason(validUntil, policy.issued?.oldChain, policy)}); removing the root now would fail their handshakes. ` +
            `Safe from ${iso(validUntil)}: try again in ${formatDuration(Math.ceil((validUntil - nowMs) / 1000) * 1000)}, or pass --force if the old root is compromised`,
        );
      }
      warning = `retired early (--force): workloads still holding certificates from root ${short(old.cert.keyId)} fail handshakes until they renew (up to ${iso(validUntil)})`;
    }
    const roots = state.roots.map((s) => (s === old ? retireSlot(old, nowMs, warning !== undefined) : s));
    const intermediates = state.intermediates.map((s) =>
      s.cert.rootKeyId === old.cert.keyId && (s.state === 'superseded' || s.state === 'prepared') ? retireSlot(s, nowMs, warning !== undefined) : s,
    );
    await record(ctx, 'root-retire', { rootKeyId: old.cert.keyId, forced: warning !== undefined });
    return { change: { roots, intermediates }, result: { outcome: 'retired' as const, rootKeyId: old.cert.keyId, ...(warning ? { warning } : {}) } };
  }, () => ctx.clock.now());
}

export interface IntermediateResult {
  readonly step: IntermediateStep['step'];
  readonly keyId?: string;
}

function rootKeyFor(cur: KeyStoreSnapshot, rootKeyId: string): KeyObject {
  const key = cur.rootKey(rootKeyId);
  if (!key) {
    throw refused(`refused: meshca does not hold the key of root ${short(rootKeyId)} (an external root); make one with "meshca ca init --external-root-cert … --external-root-key …" or rotate the root`);
  }
  return key;
}

/**
 * The scheduler's step: does whatever nextIntermediateStep says is due now (one step per call), or,
 * with `now: true`, makes and activates a new intermediate at once (operator's request).
 */
export function rotateIntermediate(ctx: RotationContext, opts: { keyType: KeyType; now?: boolean }): Promise<IntermediateResult> {
  return ctx.store.transact<IntermediateResult>(async (cur) => {
    const state = cur.state;
    const nowMs = ctx.clock.now();
    const root = activeSlotOf(state.roots, 'root');
    const plan: IntermediateStep = opts.now ? { step: 'prepare', rootKeyId: root.cert.keyId } : nextIntermediateStep(state, nowMs, ctx.policy);
    const ttl = ctx.policy.maxLeafTtlMs;
    switch (plan.step) {
      case 'none':
        return { result: { step: 'none' as const } };
      case 'prepare': {
        const made = await makeIntermediate(ctx, cur.rootCertPem(root.cert.keyId), rootKeyFor(cur, root.cert.keyId), opts.keyType);
        await record(ctx, 'intermediate-prepare', { keyId: made.slot.keyId, rootKeyId: root.cert.keyId, notAfter: iso(made.slot.notAfterMs) });
        // Asked for now: prepared and active in one step (other replicas learn both on reload).
        const slot = opts.now ? activateSlot(prepareSlot(made.slot, nowMs), nowMs) : prepareSlot(made.slot, nowMs);
        const intermediates: IntermediateSlot[] = state.intermediates.map((s) =>
          opts.now && (s.state === 'active' || (s.state === 'prepared' && s.cert.rootKeyId === root.cert.keyId)) ? supersedeSlot(s, nowMs, ttl) : s,
        );
        if (opts.now) await record(ctx, 'intermediate-activate', { keyId: made.slot.keyId, rootKeyId: root.cert.keyId, forced: true });
        return {
          change: { roots: state.roots, intermediates: [...intermediates, slot], newIntermediates: new Map([[made.slot.keyId, made.material]]) },
          result: { step: opts.now ? ('activate' as const) : ('prepare' as const), keyId: made.slot.keyId },
        };
      }
      case 'activate': {
        await record(ctx, 'intermediate-activate', { keyId: plan.keyId, rootKeyId: root.cert.keyId, forced: false });
        const intermediates = state.intermediates.map((s) => {
          if (s.cert.keyId === plan.keyId && s.state === 'prepared') return activateSlot(s, nowMs);
          if (s.state === 'active') return supersedeSlot(s, nowMs, ttl);
          return s;
        });
        return { change: { roots: state.roots, intermediates }, result: { step: 'activate' as const, keyId: plan.keyId } };
      }
      case 'retire': {
        const intermediates = state.intermediates.map((s) => (s.cert.keyId === plan.keyId && s.state === 'superseded' ? retireSlot(s, nowMs, false) : s));
        return { change: { roots: state.roots, intermediates }, result: { step: 'retire' as const, keyId: plan.keyId } };
      }
    }
  }, () => ctx.clock.now());
}
