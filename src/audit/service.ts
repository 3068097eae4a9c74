// meshca.audit.v1.AuditService: the ledger for auditors over gRPC. Only SPIFFE IDs in --auditors
// get answers; every call, allowed or refused, is recorded first. Never answers what it could not record.

import * as grpc from '@grpc/grpc-js';
import type { Caller } from '../authn/index.ts';
import { isMeshcaError, MeshcaError, toGrpcStatus } from '../errors/index.ts';
import type { AuditQueryEvent, Ledger, LedgerRecord, RefusalCounter, VerifyReport } from '../ledger/index.ts';
import type { Logger } from '../observability/index.ts';
import type { Clock } from '../time/index.ts';
import { AUDIT_SERVICE, peerAddressOf, serviceClient, serviceDefinition } from '../transport/index.ts';
import { buildLedgerQuery, describeFilter, type AuditFilterInput } from './filter.ts';

/** What authentication may look at: the call's metadata, peer and TLS auth context. */
export type AuditCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getPeer' | 'getAuthContext'>;

export interface AuditServiceDeps {
  readonly ledger: Pick<Ledger, 'append' | 'query' | 'verify'>;
  /** SPIFFE IDs allowed to read the ledger. */
  readonly auditors: readonly string[];
  /** Who is calling; throws a MeshcaError UNAUTHENTICATED when the caller has no identity. */
  readonly authenticate: (call: AuditCall) => Promise<Caller>;
  readonly clock: Clock;
  readonly log?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Counts calls that never authenticated instead of one record each (anyone can send those). */
  readonly refusals?: Pick<RefusalCounter, 'count'>;
}

interface QueryRequest {
  spiffe_id: string;
  namespace: string;
  service_account: string;
  pod: string;
  serial: string;
  since_ms: number;
  until_ms: number;
  denied_only: boolean;
  limit: number;
  type: string;
  after_seq: number;
  before_seq: number;
  ascending: boolean;
}

/** A client constructor for the auditor API (tests, tools). */
export function auditServiceClient(): grpc.ServiceClientConstructor {
  return serviceClient(AUDIT_SERVICE);
}

function toFilterInput(req: QueryRequest): AuditFilterInput {
  return {
    id: req.spiffe_id,
    ns: req.namespace,
    sa: req.service_account,
    pod: req.pod,
    serial: req.serial,
    since: req.since_ms,
    until: req.until_ms,
    denied: req.denied_only,
    limit: req.limit,
    type: req.type,
    afterSeq: req.after_seq,
    beforeSeq: req.before_seq,
    ascending: req.ascending,
  };
}

function toWireRecord(r: LedgerRecord): Record<string, unknown> {
  const e = r.event;
  return {
    seq: r.seq,
    hash: r.hash,
    prev_hash: r.prevHash,
    type: e.type,
    time_ms: e.timeMs,
    decision: e.type === 'ca' ? '' : e.decision,
    spiffe_id: e.type === 'issuance' ? (e.spiffeId ?? '') : '',
    serial: e.type === 'issuance' ? (e.serial ?? '') : '',
    event_json: r.eventJson,
  };
}

function toWireReport(r: VerifyReport): Record<string, unknown> {
  return {
    ok: r.ok,
    records: r.records,
    anchor_seq: r.anchorSeq,
    head_seq: r.headSeq,
    head_hash: r.headHash,
    checkpoints: r.checkpoints,
    checkpoints_signed: r.checkpointsSigned,
    signatures_checked: r.signaturesChecked,
    uncovered_records: r.uncoveredRecords,
    problems: r.problems.map((p) => ({ kind: p.kind, seq: p.seq, message: p.message })),
  };
}

/** Without a log (tests), internal errors still answer with a correlation id. */
const SILENT = { error: () => undefined };

export function createAuditService(deps: AuditServiceDeps): { service: grpc.ServiceDefinition; handlers: grpc.UntypedServiceImplementation } {
  const auditors = new Set(deps.auditors);

  /** Authenticates, authorises and records the call; returns only if the caller may have an answer. */
  async function admit(call: AuditCall, method: string, filter: () => Record<string, string | number | boolean>): Promise<void> {
    const base = { type: 'audit-query' as const, method, peer: peerAddressOf(call) };
    let caller: Caller;
    try {
      caller = await deps.authenticate(call);
    } catch (err) {
      const reason = isMeshcaError(err) ? err.message : 'caller could not be authenticated';
      if (deps.refusals) deps.refusals.count({ channel: `audit:${method}`, peer: base.peer, errorCode: isMeshcaError(err) ? err.code : 'UNAUTHENTICATED', reason });
      else await record({ ...base, timeMs: deps.clock.now(), caller: 'unauthenticated', decision: 'denied', reason, filter: {} });
      throw err;
    }
    const who = { ...base, caller: caller.spiffeId.uri, authenticator: caller.authenticator };
    if (!auditors.has(caller.spiffeId.uri)) {
      const reason = `${caller.spiffeId.uri} is not an auditor (--auditors)`;
      await record({ ...who, timeMs: deps.clock.now(), decision: 'denied', reason, filter: {} });
      deps.log?.warn({ caller: caller.spiffeId.uri, method }, 'audit request refused: not an auditor');
      throw new MeshcaError('PERMISSION_DENIED', reason);
    }
    let summary: Record<string, string | number | boolean>;
    try {
      summary = filter();
    } catch (err) {
      await record({ ...who, timeMs: deps.clock.now(), decision: 'denied', reason: isMeshcaError(err) ? err.message : 'bad request', filter: {} });
      throw err;
    }
    // An auditor's read is only answered once it is on the record.
    await deps.ledger.append({ ...who, timeMs: deps.clock.now(), decision: 'granted', filter: summary });
    deps.log?.info({ caller: caller.spiffeId.uri, method, filter: summary }, 'audit request');
  }

  /** Refusals are recorded when possible; a ledger outage must not turn a refusal into an answer. */
  async function record(event: AuditQueryEvent): Promise<void> {
    await deps.ledger.append(event).catch(() => undefined);
  }

  const handlers: grpc.UntypedServiceImplementation = {
    Query: (call: grpc.ServerWritableStream<QueryRequest, unknown>) => {
      void (async () => {
        try {
          let query!: ReturnType<typeof buildLedgerQuery>;
          await admit(call, 'Query', () => {
            query = buildLedgerQuery(toFilterInput(call.request), deps.clock);
            return describeFilter(query);
          });
          for (const r of await deps.ledger.query(query)) call.write(toWireRecord(r));
          call.end();
        } catch (err) {
          call.emit('error', toGrpcStatus(err, deps.log ?? SILENT));
        }
      })();
    },
    Verify: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      void (async () => {
        try {
          await admit(call, 'Verify', () => ({}));
          callback(null, toWireReport(await deps.ledger.verify()));
        } catch (err) {
          callback(toGrpcStatus(err, deps.log ?? SILENT));
        }
      })();
    },
  };
  return { service: serviceDefinition(AUDIT_SERVICE), handlers };
}
