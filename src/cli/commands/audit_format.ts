// How `meshca audit` prints ledger records: an aligned table for people, CSV for spreadsheets,
// JSON lines (with the exact canonical event the hash covers) for SIEMs and re-verification.

import { isMeshcaError, MeshcaError } from '../../errors/index.ts';
import type { LedgerEvent, LedgerRecord } from '../../ledger/index.ts';

/** Filter problems are bad command-line input here: exit 2 with the reason. */
export function asUsageError(err: unknown): unknown {
  if (isMeshcaError(err, 'BAD_REQUEST') || isMeshcaError(err, 'BAD_SPIFFE_ID')) return new MeshcaError('BAD_CONFIG', err.message, { cause: err });
  return err;
}

function iso(ms: number | undefined): string {
  return ms === undefined ? '' : new Date(ms).toISOString();
}

/** Who or what a record is about, in one cell. */
function subjectOf(e: LedgerEvent): string {
  switch (e.type) {
    case 'issuance':
      return e.spiffeId ?? '(unauthenticated)';
    case 'audit-query':
      return e.caller;
    case 'ca':
      return `${e.event} by ${e.actor}`;
    case 'refusals':
      return `(unauthenticated) ${e.peer}`;
  }
}

function detailOf(e: LedgerEvent): string {
  switch (e.type) {
    case 'issuance':
      return e.decision === 'granted' ? `${e.channel} until ${iso(e.notAfterMs)}` : `${e.errorCode ?? ''}: ${e.reason}`;
    case 'audit-query':
      return `${e.method ?? ''} ${JSON.stringify(e.filter)}${e.reason ? ` ${e.reason}` : ''}`.trim();
    case 'ca':
      return JSON.stringify(e.detail);
    case 'refusals':
      return `${e.count} × ${e.channel} ${e.errorCode}: ${e.reason} (since ${iso(e.sinceMs)})`;
  }
}

export function formatTable(records: readonly LedgerRecord[]): string {
  const header = ['SEQ', 'TIME', 'TYPE', 'DECISION', 'SUBJECT', 'SERIAL', 'DETAIL'];
  const rows = records.map((r) => {
    const e = r.event;
    return [String(r.seq), iso(e.timeMs), e.type, e.type === 'ca' ? '' : e.decision, subjectOf(e), e.type === 'issuance' ? (e.serial ?? '') : '', detailOf(e)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

const CSV_COLUMNS = [
  'seq', 'time', 'type', 'decision', 'reason', 'error_code', 'channel', 'spiffe_id', 'namespace', 'service_account', 'pod_name', 'pod_uid',
  'node_name', 'authenticator', 'token_sha256', 'token_jti', 'peer', 'serial', 'not_before', 'not_after', 'issuer_key_id', 'root_key_id',
  'requested_ttl_seconds', 'granted_ttl_seconds', 'caller', 'event', 'hash',
] as const;

function csvCell(v: string | number | undefined): string {
  const text = v === undefined ? '' : String(v);
  // RFC 4180 quoting; a leading =,+,-,@ is neutralised so a spreadsheet never runs it as a formula.
  const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function formatCsv(records: readonly LedgerRecord[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of records) {
    const e = r.event;
    const i = e.type === 'issuance' ? e : undefined;
    const row: Record<(typeof CSV_COLUMNS)[number], string | number | undefined> = {
      seq: r.seq,
      time: iso(e.timeMs),
      type: e.type,
      decision: e.type === 'ca' ? undefined : e.decision,
      reason: i?.reason ?? (e.type === 'audit-query' || e.type === 'refusals' ? e.reason : undefined),
      error_code: i?.errorCode ?? (e.type === 'refusals' ? e.errorCode : undefined),
      channel: i?.channel ?? (e.type === 'refusals' ? e.channel : undefined),
      spiffe_id: i?.spiffeId,
      namespace: i?.namespace,
      service_account: i?.serviceAccount,
      pod_name: i?.podName,
      pod_uid: i?.podUid,
      node_name: i?.nodeName,
      authenticator: i?.authenticator ?? (e.type === 'audit-query' ? e.authenticator : undefined),
      token_sha256: i?.tokenSha256,
      token_jti: i?.tokenJti,
      peer: i?.peer ?? (e.type === 'audit-query' || e.type === 'refusals' ? e.peer : undefined),
      serial: i?.serial,
      not_before: i?.notBeforeMs === undefined ? undefined : iso(i.notBeforeMs),
      not_after: i?.notAfterMs === undefined ? undefined : iso(i.notAfterMs),
      issuer_key_id: i?.issuerKeyId,
      root_key_id: i?.rootKeyId,
      requested_ttl_seconds: i?.requestedTtlSeconds,
      granted_ttl_seconds: i?.grantedTtlSeconds,
      caller: e.type === 'audit-query' ? e.caller : e.type === 'ca' ? e.actor : undefined,
      event: e.type === 'ca' ? e.event : e.type === 'audit-query' ? e.method : e.type === 'refusals' ? `count=${e.count}` : undefined,
      hash: r.hash,
    };
    lines.push(CSV_COLUMNS.map((c) => csvCell(row[c])).join(','));
  }
  return lines.join('\n');
}

/** One JSON object per line; `event` is the stored canonical JSON, byte for byte. */
export function formatJsonLine(r: LedgerRecord): string {
  return `{"seq":${r.seq},"prevHash":"${r.prevHash}","hash":"${r.hash}","event":${r.eventJson}}`;
}
