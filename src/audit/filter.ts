// Auditor filters, shared by `meshca audit` and the gRPC API: validated once into a LedgerQuery,
// and summarised for the audit-query record. Bad input is a BAD_REQUEST naming the filter.

import { MeshcaError } from '../errors/index.ts';
import type { LedgerEvent, LedgerQuery } from '../ledger/index.ts';
import { parseSpiffeId } from '../spiffe/index.ts';
import { parseDuration, type Clock } from '../time/index.ts';

export const DEFAULT_QUERY_LIMIT = 100;
/** One answer at most; larger reads page with the seq cursor (after_seq / before_seq), as `meshca audit` does. */
export const MAX_QUERY_LIMIT = 10_000;

const EVENT_TYPES: readonly LedgerEvent['type'][] = ['issuance', 'ca', 'audit-query', 'refusals'];

/** Filters as people type them (CLI flags) or as the wire carries them (proto fields). */
export interface AuditFilterInput {
  readonly id?: string;
  readonly ns?: string;
  readonly sa?: string;
  readonly pod?: string;
  readonly serial?: string;
  /** ISO 8601 time, a duration ago ("24h"), or milliseconds since the epoch. */
  readonly since?: string | number;
  readonly until?: string | number;
  readonly denied?: boolean;
  readonly limit?: number;
  readonly type?: string;
  readonly afterSeq?: number;
  readonly beforeSeq?: number;
  readonly ascending?: boolean;
}

function bad(message: string): MeshcaError {
  return new MeshcaError('BAD_REQUEST', message);
}

/** "2030-01-01", "2030-01-01T12:00:00Z", or a duration before now ("24h", "7d"). */
export function parseTimeBound(value: string | number, name: string, clock: Clock): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw bad(`${name}: ${value} is not a time in milliseconds since the epoch`);
    return value;
  }
  const text = value.trim();
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) throw bad(`${name}: "${value}" is not an ISO 8601 time; use e.g. 2030-01-31T12:00:00Z`);
    return ms;
  }
  try {
    return clock.now() - parseDuration(text, name);
  } catch {
    throw bad(`${name}: "${value}" is neither an ISO 8601 time (2030-01-31T12:00:00Z) nor a duration ago (24h, 7d)`);
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

export function buildLedgerQuery(input: AuditFilterInput, clock: Clock): LedgerQuery {
  const id = nonEmpty(input.id);
  if (id !== undefined) parseSpiffeId(id);
  const serial = nonEmpty(input.serial);
  if (serial !== undefined && !/^[0-9a-fA-F:]+$/.test(serial)) throw bad(`serial "${serial}" is not hex; give it as printed by openssl, e.g. 3f:a2:… or 3fa2…`);
  const type = nonEmpty(input.type);
  if (type !== undefined && !(EVENT_TYPES as readonly string[]).includes(type)) throw bad(`type "${type}" is not one of ${EVENT_TYPES.join(', ')}`);
  const limit = input.limit === undefined || input.limit === 0 ? DEFAULT_QUERY_LIMIT : input.limit;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_QUERY_LIMIT) throw bad(`limit ${limit} is outside 1–${MAX_QUERY_LIMIT}; page with after_seq (ascending) or before_seq (descending) set to the last seq received for more`);
  const sinceMs = input.since === undefined || input.since === '' || input.since === 0 ? undefined : parseTimeBound(input.since, 'since', clock);
  const untilMs = input.until === undefined || input.until === '' || input.until === 0 ? undefined : parseTimeBound(input.until, 'until', clock);
  if (sinceMs !== undefined && untilMs !== undefined && untilMs <= sinceMs) throw bad('until must be later than since');
  const ns = nonEmpty(input.ns);
  const sa = nonEmpty(input.sa);
  const pod = nonEmpty(input.pod);
  return {
    ...(id !== undefined ? { spiffeId: id } : {}),
    ...(ns !== undefined ? { namespace: ns } : {}),
    ...(sa !== undefined ? { serviceAccount: sa } : {}),
    ...(pod !== undefined ? { podName: pod } : {}),
    ...(serial !== undefined ? { serial } : {}),
    ...(type !== undefined ? { type: type as LedgerEvent['type'] } : {}),
    ...(input.denied ? { deniedOnly: true } : {}),
    ...(sinceMs !== undefined ? { sinceMs } : {}),
    ...(untilMs !== undefined ? { untilMs } : {}),
    ...(input.afterSeq ? { afterSeq: input.afterSeq } : {}),
    ...(input.beforeSeq ? { beforeSeq: input.beforeSeq } : {}),
    order: input.ascending ? 'asc' : 'desc',
    limit,
  };
}

/** What the audit-query record says was asked: the filters given, nothing else. */
export function describeFilter(q: LedgerQuery): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) out[k] = v;
  }
  return out;
}
