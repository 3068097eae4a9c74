// The runtime deny list in the key store: one JSON file (`deny-list.json`) beside the cacerts files,
// so every serve sharing the store follows it (docs/security.md, "Deny list"). Changes run under
// the key store's lock and are recorded in the ledger, with the admin who made them, before they
// are written. Holds no key material.

import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { formatDenyTarget, isDenyEntryInForce, parseDenyTarget, type DenyEntry } from '../authn/index.ts';
import { MeshcaError } from '../errors/index.ts';
import type { LedgerWriter } from '../ledger/index.ts';
import { PUBLIC_FILE_MODE, writeFileAtomic } from '../pki/index.ts';
import type { Clock } from '../time/index.ts';
import { withFileLock } from './lock.ts';

export const DENY_LIST_FILE = 'deny-list.json';
const DENY_LOCK_FILE = '.deny-list.lock';
const FORMAT = 'meshca-deny-list/1';
/** A reason is for people reading `deny list` and the ledger, not a document. */
export const MAX_DENY_REASON_CHARS = 500;

export interface DenyListDocument {
  /** Grows with every change (a follower's quick "did it change"). */
  readonly version: number;
  readonly entries: readonly DenyEntry[];
}

/** Where the deny list lives; a Kubernetes Secret key store keeps the same file under the same name. */
export interface DenyListStore {
  read(): DenyListDocument;
  /** Runs `change` on the current list under the store's lock and writes what it returns (unchanged: nothing written). */
  update<T>(change: (current: DenyListDocument) => Promise<{ readonly entries?: readonly DenyEntry[]; readonly result: T }>): Promise<T>;
  /** Cheap and different whenever the list changed (for pollers). */
  changeToken(): string;
}

const EMPTY: DenyListDocument = Object.freeze({ version: 0, entries: Object.freeze([]) });

export function parseDenyListDocument(text: string, where: string): DenyListDocument {
  const bad = (why: string) => new MeshcaError('BAD_CONFIG', `${where} is not a meshca deny list (${why})`);
  let doc: { format?: unknown; version?: unknown; entries?: unknown };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    throw bad('not JSON');
  }
  if (doc.format !== FORMAT) throw bad(`format is not ${FORMAT}`);
  if (typeof doc.version !== 'number' || !Array.isArray(doc.entries)) throw bad('no version or entries');
  const entries = doc.entries.map((e: Partial<DenyEntry>, i): DenyEntry => {
    if (typeof e.target !== 'string' || typeof e.reason !== 'string' || typeof e.addedBy !== 'string' || typeof e.addedAtMs !== 'number') throw bad(`entry ${i} is incomplete`);
    if (e.untilMs !== undefined && typeof e.untilMs !== 'number') throw bad(`entry ${i} has a bad untilMs`);
    // A target that does not parse would be a rule nobody can match: refuse the whole file.
    parseDenyTarget(e.target);
    return Object.freeze({ target: e.target, reason: e.reason, addedBy: e.addedBy, addedAtMs: e.addedAtMs, ...(e.untilMs !== undefined ? { untilMs: e.untilMs } : {}) });
  });
  return Object.freeze({ version: doc.version, entries: Object.freeze(entries) });
}

export function serializeDenyListDocument(doc: DenyListDocument): string {
  return `${JSON.stringify({ format: FORMAT, version: doc.version, entries: doc.entries }, null, 2)}\n`;
}

export class DirectoryDenyListStore implements DenyListStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  get path(): string {
    return join(this.#dir, DENY_LIST_FILE);
  }

  read(): DenyListDocument {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY;
      throw err;
    }
    return parseDenyListDocument(text, this.path);
  }

  changeToken(): string {
    try {
      const s = statSync(this.path);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return '-';
    }
  }

  async update<T>(change: (current: DenyListDocument) => Promise<{ readonly entries?: readonly DenyEntry[]; readonly result: T }>): Promise<T> {
    if (!existsSync(this.#dir)) throw new MeshcaError('KEYS_MISSING', `key directory ${this.#dir} does not exist; run "meshca ca init --keys ${this.#dir}" first`);
    mkdirSync(this.#dir, { recursive: true });
    return withFileLock(join(this.#dir, DENY_LOCK_FILE), async () => {
      const current = this.read();
      const { entries, result } = await change(current);
      if (entries) writeFileAtomic(this.path, serializeDenyListDocument({ version: current.version + 1, entries }), PUBLIC_FILE_MODE);
      return result;
    });
  }
}

export interface DenyChangeContext {
  readonly store: DenyListStore;
  readonly ledger: LedgerWriter;
  readonly clock: Clock;
  /** Who asks: "cli:<user>" or an admin's SPIFFE ID. */
  readonly actor: string;
}

export interface DenyAddRequest {
  readonly target: string;
  readonly reason: string;
  readonly untilMs?: number;
}

export type DenyAddResult = { readonly outcome: 'added' | 'updated'; readonly entry: DenyEntry };
export type DenyRemoveResult = { readonly outcome: 'removed' | 'not-listed'; readonly target: string };

/** Adds (or replaces) the entry for a target; entries whose --until has passed are dropped on the way. */
export async function addDenyEntry(ctx: DenyChangeContext, req: DenyAddRequest): Promise<DenyAddResult> {
  const target = formatDenyTarget(parseDenyTarget(req.target));
  const reason = req.reason.trim();
  if (reason === '') throw new MeshcaError('BAD_REQUEST', 'a deny entry needs --reason: say why, for whoever reads the list and the ledger');
  if (reason.length > MAX_DENY_REASON_CHARS) throw new MeshcaError('BAD_REQUEST', `--reason is ${reason.length} characters; at most ${MAX_DENY_REASON_CHARS}`);
  const nowMs = ctx.clock.now();
  if (req.untilMs !== undefined && req.untilMs <= nowMs) throw new MeshcaError('BAD_REQUEST', `--until ${new Date(req.untilMs).toISOString()} is not in the future`);
  return ctx.store.update<DenyAddResult>(async (current) => {
    const entry: DenyEntry = { target, reason, addedBy: ctx.actor, addedAtMs: nowMs, ...(req.untilMs !== undefined ? { untilMs: req.untilMs } : {}) };
    const kept = current.entries.filter((e) => e.target !== target && isDenyEntryInForce(e, nowMs));
    const outcome = kept.length === current.entries.filter((e) => isDenyEntryInForce(e, nowMs)).length ? 'added' : 'updated';
    // Recorded before it is written: a change the ledger cannot hold does not happen.
    await ctx.ledger.append({
      type: 'ca', timeMs: nowMs, event: 'deny-add', actor: ctx.actor,
      detail: { target, reason, ...(req.untilMs !== undefined ? { until: new Date(req.untilMs).toISOString() } : {}) },
    });
    return { entries: [...kept, entry], result: { outcome, entry } };
  });
}

export async function removeDenyEntry(ctx: DenyChangeContext, targetText: string): Promise<DenyRemoveResult> {
  const target = formatDenyTarget(parseDenyTarget(targetText));
  return ctx.store.update<DenyRemoveResult>(async (current) => {
    if (!current.entries.some((e) => e.target === target)) return { result: { outcome: 'not-listed', target } };
    await ctx.ledger.append({ type: 'ca', timeMs: ctx.clock.now(), event: 'deny-remove', actor: ctx.actor, detail: { target } });
    return { entries: current.entries.filter((e) => e.target !== target), result: { outcome: 'removed', target } };
  });
}

/** One line of `meshca deny list`: runtime entries from the key store, static ones from the settings. */
export interface DenyListRow {
  readonly target: string;
  readonly source: 'runtime' | 'static';
  readonly reason: string;
  readonly addedBy?: string;
  readonly addedAt?: string;
  readonly until?: string;
  /** False for a runtime entry whose --until has passed (it no longer stops anyone). */
  readonly inForce: boolean;
}

export interface StaticDenials {
  readonly denyIds: readonly string[];
  readonly denyNamespaces: readonly string[];
}

export function denyListRows(doc: DenyListDocument, statics: StaticDenials, nowMs: number): DenyListRow[] {
  const iso = (ms: number) => new Date(ms).toISOString();
  return [
    ...statics.denyIds.map((id): DenyListRow => ({ target: id, source: 'static', reason: '--deny-ids', inForce: true })),
    ...statics.denyNamespaces.map((ns): DenyListRow => ({ target: `ns/${ns}`, source: 'static', reason: '--deny-namespaces', inForce: true })),
    ...doc.entries.map((e): DenyListRow => ({
      target: e.target,
      source: 'runtime',
      reason: e.reason,
      addedBy: e.addedBy,
      addedAt: iso(e.addedAtMs),
      ...(e.untilMs !== undefined ? { until: iso(e.untilMs) } : {}),
      inForce: isDenyEntryInForce(e, nowMs),
    })),
  ];
}

export function formatDenyListRows(rows: readonly DenyListRow[]): string {
  if (rows.length === 0) return 'the deny list is empty\n';
  return rows
    .map((r) => {
      const who = r.addedBy ? ` by ${r.addedBy} at ${r.addedAt}` : '';
      const until = r.until ? ` until ${r.until}` : '';
      const expired = r.inForce ? '' : ' (expired)';
      return `${r.target}\t${r.source}${who}${until}${expired}\t${r.reason}\n`;
    })
    .join('');
}
