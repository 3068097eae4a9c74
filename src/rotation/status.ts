// What `meshca root status` shows: every slot, the bundle being distributed and since when, how
// many workloads have received it (from the ledger, where one is given), and the next safe step.

import { sha256Hex } from '../pki/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { KeyStoreSnapshot } from './key_store.ts';
import { intermediateScheduleAtMs, nextRootStep, trustBundleRoots, type RotationPolicy } from './schedule.ts';
import { activeSlotOf, type Slot, type SlotCertificate } from './slots.ts';

/** Identities counted per ledger query; beyond this the figure is marked as a lower bound. */
const ACK_QUERY_LIMIT = 10_000;

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export interface SlotView {
  readonly keyId: string;
  readonly state: Slot<SlotCertificate>['state'];
  readonly subject: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly keyHeld: boolean;
  readonly preparedAt?: string;
  readonly activatedAt?: string;
  readonly supersededAt?: string;
  readonly retiredAt?: string;
  readonly rootKeyId?: string;
}

export interface Acknowledgements {
  /** Workload identities issued a certificate (which carries the bundle) since every serve distributes it. */
  readonly received: number;
  /** Identities seen within one leaf lifetime before the change and not since: still on the old bundle. */
  readonly pending: number;
  /** True when the ledger held more than the counter reads: the figures are lower bounds. */
  readonly truncated: boolean;
}

export interface RotationStatus {
  readonly version: number;
  readonly roots: readonly SlotView[];
  readonly intermediates: readonly SlotView[];
  readonly bundle: { readonly rootKeyIds: readonly string[]; readonly sha256: string; readonly since: string };
  readonly acknowledgements?: Acknowledgements;
  readonly nextStep: { readonly step: string; readonly keyId?: string; readonly allowedAt: string; readonly allowedNow: boolean; readonly why: string };
  readonly intermediateRotation: { readonly prepareAt: string; readonly activateAt: string; readonly automatic: boolean };
}

function viewOf(slot: Slot<SlotCertificate & { subject: string; rootKeyId?: string }>): SlotView {
  const s = slot as Slot<SlotCertificate & { subject: string; rootKeyId?: string }> & { activatedAtMs?: number; supersededAtMs?: number; retiredAtMs?: number };
  return {
    keyId: s.cert.keyId,
    state: s.state,
    subject: s.cert.subject,
    notBefore: iso(s.cert.notBeforeMs)!,
    notAfter: iso(s.cert.notAfterMs)!,
    keyHeld: s.cert.hasKey && s.state !== 'retired',
    preparedAt: iso(s.preparedAtMs),
    ...(s.activatedAtMs !== undefined ? { activatedAt: iso(s.activatedAtMs) } : {}),
    ...(s.supersededAtMs !== undefined ? { supersededAt: iso(s.supersededAtMs) } : {}),
    ...(s.retiredAtMs !== undefined ? { retiredAt: iso(s.retiredAtMs) } : {}),
    ...(s.cert.rootKeyId ? { rootKeyId: s.cert.rootKeyId } : {}),
  };
}

/**
 * The moment the bundle last changed: the latest moment any root joined it (was prepared) or left it
 * (was retired). Activation changes what signs, not what is trusted, so it does not count.
 */
export function bundleChangedAtMs(snapshot: KeyStoreSnapshot): number {
  let at = 0;
  for (const s of snapshot.state.roots) at = Math.max(at, s.preparedAtMs, s.state === 'retired' ? s.retiredAtMs : 0);
  return at > 0 ? at : snapshot.state.updatedAtMs;
}

/**
 * Counted from the moment every serve distributes the bundle (the change plus the reload bound):
 * a certificate issued before that may still carry the previous bundle.
 */
async function acknowledgementsOf(ledger: Pick<Ledger, 'query'>, sinceMs: number, maxLeafTtlMs: number): Promise<Acknowledgements> {
  const identities = async (from: number, until?: number) => {
    const records = await ledger.query({ type: 'issuance', sinceMs: from, ...(until !== undefined ? { untilMs: until } : {}), limit: ACK_QUERY_LIMIT });
    const ids = new Set<string>();
    for (const r of records) {
      const e = r.event;
      if (e.type === 'issuance' && e.decision === 'granted' && e.channel !== 'serving-cert' && e.spiffeId) ids.add(`${e.spiffeId}|${e.podName ?? ''}`);
    }
    return { ids, truncated: records.length >= ACK_QUERY_LIMIT };
  };
  const after = await identities(sinceMs);
  const before = await identities(sinceMs - maxLeafTtlMs, sinceMs);
  let pending = 0;
  for (const id of before.ids) if (!after.ids.has(id)) pending++;
  return { received: after.ids.size, pending, truncated: after.truncated || before.truncated };
}

export async function rotationStatus(snapshot: KeyStoreSnapshot, nowMs: number, policy: RotationPolicy, ledger?: Pick<Ledger, 'query'>): Promise<RotationStatus> {
  const state = snapshot.state;
  const bundle = trustBundleRoots(state);
  const bundlePem = bundle.map((s) => snapshot.rootCertPem(s.cert.keyId)).join('');
  const since = bundleChangedAtMs(snapshot);
  const step = nextRootStep(state, nowMs, policy);
  const active = activeSlotOf(state.intermediates, 'intermediate');
  const schedule = intermediateScheduleAtMs(active.cert);
  const rootHeld = activeSlotOf(state.roots, 'root').cert.hasKey;
  return {
    version: state.version,
    roots: state.roots.map(viewOf),
    intermediates: state.intermediates.map(viewOf),
    bundle: { rootKeyIds: bundle.map((s) => s.cert.keyId), sha256: sha256Hex(bundlePem), since: iso(since)! },
    ...(ledger ? { acknowledgements: await acknowledgementsOf(ledger, since + policy.reloadBoundMs, policy.maxLeafTtlMs) } : {}),
    nextStep: { step: step.step, ...('keyId' in step ? { keyId: step.keyId } : {}), allowedAt: iso(step.allowedAtMs)!, allowedNow: step.allowedAtMs <= nowMs, why: step.why },
    intermediateRotation: { prepareAt: iso(schedule.prepareAtMs)!, activateAt: iso(schedule.activateAtMs)!, automatic: rootHeld },
  };
}

/** The human form: one block per slot, then the bundle and the next step. */
export function formatRotationStatus(s: RotationStatus): string {
  const lines: string[] = [];
  const slot = (v: SlotView, indent: string) =>
    `${indent}${v.state.padEnd(10)} ${v.keyId.slice(0, 16)}…  ${v.notBefore.slice(0, 19)}Z → ${v.notAfter.slice(0, 19)}Z${v.keyHeld ? '' : '  (key not held)'}`;
  lines.push(`key store version ${s.version}`);
  lines.push('roots:');
  for (const r of s.roots) {
    lines.push(slot(r, '  '));
    for (const i of s.intermediates.filter((x) => x.rootKeyId === r.keyId)) lines.push(slot(i, '    intermediate '));
  }
  lines.push(`trust bundle: ${s.bundle.rootKeyIds.length} root(s) [${s.bundle.rootKeyIds.map((k) => `${k.slice(0, 16)}…`).join(', ')}], sha256 ${s.bundle.sha256.slice(0, 16)}…, distributed since ${s.bundle.since}`);
  if (s.acknowledgements) {
    const a = s.acknowledgements;
    lines.push(`  received by ${a.received}${a.truncated ? '+' : ''} workload identities since then; ${a.pending}${a.truncated ? '+' : ''} seen before and not since (still on the previous bundle)`);
  } else {
    lines.push('  acknowledgements: unknown (pass --db to count workloads from the ledger)');
  }
  lines.push(`next step: meshca root ${s.nextStep.step}${s.nextStep.allowedNow ? ' (safe now)' : ` (safe from ${s.nextStep.allowedAt})`}: ${s.nextStep.why}`);
  lines.push(
    `intermediate rotation: prepare at ${s.intermediateRotation.prepareAt}, activate at ${s.intermediateRotation.activateAt}` +
      (s.intermediateRotation.automatic ? ' (automatic in meshca serve)' : ' (not automatic: the root key is not held)'),
  );
  return `${lines.join('\n')}\n`;
}
