// The facts root rotation waits on, read from the ledger: what was actually issued (the latest
// notAfter under the old bundle or chain) and the longest leaf lifetime any running CA may grant
// (its server-start record). Never a flag an operator can mistype.

import { MAX_LEAF_TTL_MS } from '../ca/index.ts';
import type { Ledger, LedgerRecord } from '../ledger/index.ts';
import { formatDuration, SECOND_MS } from '../time/index.ts';
import { rotationPolicy, type RotationPolicy } from './schedule.ts';
import { slotsIn } from './slots.ts';
import type { RotationState } from './state.ts';

/** Records read per ledger query while scanning. */
const SCAN_PAGE = 5_000;

export type LedgerReader = Pick<Ledger, 'query'>;

/** The longest leaf lifetime a running CA may grant, and where that figure comes from. */
export interface RunningMaxTtl {
  readonly maxTtlMs: number;
  readonly source: string;
}

/** The latest expiry among certificates that matter to the next root step, with the one that sets it. */
export interface IssuedExpiry {
  readonly notAfterMs: number;
  readonly serial: string;
  readonly ttlMs: number;
}

export interface IssuedFacts {
  /** Workload certificates issued before a prepared root's bundle reached every serve: they carry only the old bundle. */
  readonly oldBundle?: IssuedExpiry;
  /** Workload certificates issued under a superseded root's chain. */
  readonly oldChain?: IssuedExpiry;
}

async function* scan(ledger: LedgerReader, type: 'issuance' | 'ca', untilMs?: number): AsyncGenerator<LedgerRecord> {
  let afterSeq = 0;
  for (;;) {
    const page = await ledger.query({ type, order: 'asc', afterSeq, limit: SCAN_PAGE, ...(untilMs !== undefined ? { untilMs } : {}) });
    yield* page;
    if (page.length < SCAN_PAGE) return;
    afterSeq = page[page.length - 1]!.seq;
  }
}

/**
 * Every `meshca serve` records its maximum TTL and an instance id when it starts, and the id again
 * when it stops; one that started and has not stopped (or crashed) may still be issuing. A ledger
 * in which no CA ever recorded its maximum gets the default maximum, never less.
 */
export async function runningMaxTtl(ledger: LedgerReader, self?: { maxTtlMs: number }): Promise<RunningMaxTtl> {
  const running = new Map<string, { maxTtlMs: number; atMs: number }>();
  let recorded = false;
  for await (const r of scan(ledger, 'ca')) {
    const e = r.event;
    if (e.type !== 'ca') continue;
    const instance = e.detail.instance;
    if (typeof instance !== 'string') continue;
    if (e.event === 'server-start' && typeof e.detail.maxTtlSeconds === 'number') {
      recorded = true;
      running.set(instance, { maxTtlMs: e.detail.maxTtlSeconds * SECOND_MS, atMs: e.timeMs });
    } else if (e.event === 'server-stop') {
      running.delete(instance);
    }
  }
  let best: RunningMaxTtl = recorded
    ? { maxTtlMs: 0, source: 'no CA is running on this ledger' }
    : { maxTtlMs: MAX_LEAF_TTL_MS, source: `no CA has recorded its maximum TTL in this ledger, so the default maximum ${formatDuration(MAX_LEAF_TTL_MS)} is assumed` };
  for (const [instance, s] of running) {
    if (s.maxTtlMs > best.maxTtlMs) {
      best = { maxTtlMs: s.maxTtlMs, source: `the CA started ${new Date(s.atMs).toISOString()} (instance ${instance}) grants up to ${formatDuration(s.maxTtlMs)}` };
    }
  }
  if (self && self.maxTtlMs > best.maxTtlMs) best = { maxTtlMs: self.maxTtlMs, source: `this CA grants up to ${formatDuration(self.maxTtlMs)}` };
  return best;
}

/**
 * What was issued that the next root step must wait out. The CA's own serving certificate is left
 * out: it is renewed at once when the chain changes and no workload holds a bundle through it.
 */
export async function issuedFacts(ledger: LedgerReader, state: RotationState, reloadBoundMs: number): Promise<IssuedFacts> {
  const prepared = slotsIn(state.roots, 'prepared')[0];
  const superseded = slotsIn(state.roots, 'superseded')[0];
  if (!prepared && !superseded) return {};
  const bundleEverywhereMs = prepared ? prepared.preparedAtMs + reloadBoundMs : undefined;
  let oldBundle: IssuedExpiry | undefined;
  let oldChain: IssuedExpiry | undefined;
  const later = (cur: IssuedExpiry | undefined, next: IssuedExpiry) => (!cur || next.notAfterMs > cur.notAfterMs ? next : cur);
  for await (const r of scan(ledger, 'issuance')) {
    const e = r.event;
    if (e.type !== 'issuance' || e.decision !== 'granted' || e.channel === 'serving-cert' || e.notAfterMs === undefined) continue;
    const expiry = { notAfterMs: e.notAfterMs, serial: e.serial ?? '?', ttlMs: lifetimeMs(e) };
    if (bundleEverywhereMs !== undefined && e.timeMs < bundleEverywhereMs) oldBundle = later(oldBundle, expiry);
    if (superseded && e.rootKeyId === superseded.cert.keyId) oldChain = later(oldChain, expiry);
  }
  return { ...(oldBundle ? { oldBundle } : {}), ...(oldChain ? { oldChain } : {}) };
}

/** The lifetime asked for when there was one (exact), else the one granted (notAfter is whole seconds). */
function lifetimeMs(e: { requestedTtlSeconds?: number; grantedTtlSeconds?: number; notAfterMs?: number; timeMs: number }): number {
  if (e.requestedTtlSeconds) return e.requestedTtlSeconds * SECOND_MS;
  return e.grantedTtlSeconds !== undefined ? e.grantedTtlSeconds * SECOND_MS : (e.notAfterMs ?? e.timeMs) - e.timeMs;
}

/** One line naming the certificate that sets a wait. */
export function describeExpiry(e: IssuedExpiry): string {
  return `a ${formatDuration(e.ttlMs)} certificate (serial ${e.serial}) is valid until ${new Date(e.notAfterMs).toISOString()}`;
}

/**
 * The policy the root steps decide by: the running CAs' longest TTL and what the ledger says was
 * issued under the current state. Read inside the step's transaction, so it fits the state it judges.
 */
export async function factualPolicy(ledger: LedgerReader, state: RotationState, reloadBoundMs: number, self?: { maxTtlMs: number }): Promise<RotationPolicy> {
  const running = await runningMaxTtl(ledger, self);
  const issued = await issuedFacts(ledger, state, reloadBoundMs);
  return rotationPolicy(running.maxTtlMs, reloadBoundMs, { issued, maxTtlSource: running.source });
}
