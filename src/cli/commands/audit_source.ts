// Where `meshca audit query|export|verify` read the ledger: the database itself (--db), or a
// running CA's audit API (--server), which needs no database credentials. Both answer at most
// MAX_QUERY_LIMIT records per call; readPages follows the seq cursor for more.

import { MAX_QUERY_LIMIT } from '../../audit/index.ts';
import type { KeyObject } from 'node:crypto';
import { ledgerUrlFor, openLedger, type AnchorCheck, type LedgerEvent, type LedgerQuery, type LedgerRecord, type VerifyReport } from '../../ledger/index.ts';
import { AUDIT_SERVICE } from '../../transport/index.ts';
import type { CommandContext } from '../command.ts';
import { connectRemote, REMOTE_SETTINGS, type RemoteSettings } from '../remote.ts';

/** What every audit reader accepts besides its filters: the ledger, or a CA to ask. */
export const AUDIT_SOURCE_SETTINGS = ['db', 'keys', ...REMOTE_SETTINGS] as const;

export interface AuditSource {
  /** For messages: the ledger (password masked) or the CA's address. */
  readonly where: string;
  /** One page: at most MAX_QUERY_LIMIT records. */
  page(query: LedgerQuery): Promise<LedgerRecord[]>;
  verify(): Promise<VerifyReport>;
  close(): Promise<void>;
}

interface WireRecord {
  seq: number;
  hash: string;
  prev_hash: string;
  event_json: string;
}

interface WireReport {
  ok: boolean;
  records: number;
  anchor_seq: number;
  head_seq: number;
  head_hash: string;
  checkpoints: number;
  checkpoints_signed: number;
  signatures_checked: boolean;
  uncovered_records: number;
  problems: { kind: VerifyReport['problems'][number]['kind']; seq: number; message: string }[];
}

/** The query as meshca.audit.v1.QueryRequest carries it (0 and "" mean "not given"). */
function toWireQuery(q: LedgerQuery): object {
  return {
    spiffe_id: q.spiffeId ?? '',
    namespace: q.namespace ?? '',
    service_account: q.serviceAccount ?? '',
    pod: q.podName ?? '',
    serial: q.serial ?? '',
    since_ms: q.sinceMs ?? 0,
    until_ms: q.untilMs ?? 0,
    denied_only: q.deniedOnly ?? false,
    limit: q.limit,
    type: q.type ?? '',
    after_seq: q.afterSeq ?? 0,
    before_seq: q.beforeSeq ?? 0,
    ascending: q.order === 'asc',
  };
}

function fromWireRecord(r: WireRecord): LedgerRecord {
  // event_json is the canonical JSON the hash covers: the record is whole, and re-verifiable.
  return { seq: r.seq, hash: r.hash, prevHash: r.prev_hash, eventJson: r.event_json, event: JSON.parse(r.event_json) as LedgerEvent };
}

function fromWireReport(r: WireReport): VerifyReport {
  return {
    ok: r.ok,
    records: r.records,
    anchorSeq: r.anchor_seq,
    headSeq: r.head_seq,
    headHash: r.head_hash,
    checkpoints: r.checkpoints,
    checkpointsSigned: r.checkpoints_signed,
    signaturesChecked: r.signatures_checked,
    uncoveredRecords: r.uncovered_records,
    problems: r.problems.map((p) => ({ kind: p.kind, seq: p.seq, message: p.message })),
  };
}

function maskPassword(db: string): string {
  return db.replace(/(postgres(?:ql)?:\/\/[^:/@]*):[^@]*@/, '$1:***@');
}

export async function openAuditSource(
  v: RemoteSettings & { readonly db?: string | undefined; readonly keys: string },
  ctx: CommandContext,
  local: { readonly verifyKeys?: readonly KeyObject[]; readonly anchor?: AnchorCheck } = {},
): Promise<AuditSource> {
  if (v.server !== undefined) {
    const remote = connectRemote(AUDIT_SERVICE, { ...v, server: v.server }, ctx.clock);
    return {
      where: `at ${remote.address}`,
      page: async (q) => (await remote.collect<WireRecord>('Query', toWireQuery(q))).map(fromWireRecord),
      verify: async () => fromWireReport(await remote.unary<WireReport>('Verify', {})),
      close: async () => remote.close(),
    };
  }
  // --db defaults to the key directory's ledger, and must belong to that CA (if it has a ledger key).
  const db = ledgerUrlFor(v.db, v.keys);
  const ledger = await openLedger(db, { clock: ctx.clock, mustExist: true, bindTo: v.keys, ...(local.verifyKeys ? { verifyKeys: local.verifyKeys } : {}) });
  return { where: maskPassword(db), page: (q) => ledger.query(q), verify: () => ledger.verify(local.anchor), close: () => ledger.close() };
}

/**
 * Up to `total` records matching `query` (Infinity for all), page by page in the query's order:
 * each page asks for at most MAX_QUERY_LIMIT and continues after the last seq it got.
 */
export async function* readPages(source: AuditSource, query: LedgerQuery, total: number): AsyncGenerator<LedgerRecord[]> {
  const ascending = query.order === 'asc';
  let cursor: Pick<LedgerQuery, 'afterSeq' | 'beforeSeq'> = {};
  for (let left = total; left > 0; ) {
    const limit = Math.min(left, MAX_QUERY_LIMIT);
    const page = await source.page({ ...query, ...cursor, limit });
    if (page.length > 0) yield page;
    if (page.length < limit) return;
    left -= page.length;
    const last = page.at(-1)!.seq;
    cursor = ascending ? { afterSeq: last } : { beforeSeq: last };
  }
}
