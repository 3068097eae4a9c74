// meshca.admin.v1.DenyListService: the runtime deny list over gRPC for --admins, the same
// operations as `meshca deny …` on the key store. Parses, admits, calls src/rotation, maps errors once.

import type * as grpc from '@grpc/grpc-js';
import { MeshcaError } from '../errors/index.ts';
import { addDenyEntry, denyListRows, removeDenyEntry, type DenyChangeContext, type StaticDenials } from '../rotation/index.ts';
import type { Clock } from '../time/index.ts';
import { DENY_LIST_SERVICE, serviceClient, serviceDefinition } from '../transport/index.ts';
import { adminUnary, type AdmissionDeps } from './admission.ts';

export interface DenyListServiceDeps extends AdmissionDeps {
  /** The deny-list store and ledger, acting for `actor` (the admin's SPIFFE ID goes into the ledger). */
  readonly denyList: (actor: string) => DenyChangeContext;
  /** This serve's --deny-ids / --deny-namespaces, listed as static. */
  readonly statics: StaticDenials;
  /** Called after a change, so this serve applies it at once rather than at the next poll. */
  readonly afterChange: () => void;
  readonly clock: Clock;
}

export function denyListServiceClient(): grpc.ServiceClientConstructor {
  return serviceClient(DENY_LIST_SERVICE);
}

/** RFC 3339 (or empty for "until removed") → ms; anything else is BAD_REQUEST. */
export function parseUntil(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw new MeshcaError('BAD_REQUEST', `until ${JSON.stringify(text)} is not an RFC 3339 time (e.g. 2026-12-01T09:00:00Z)`);
  return ms;
}

export function createDenyListService(deps: DenyListServiceDeps): { service: grpc.ServiceDefinition; handlers: grpc.UntypedServiceImplementation } {
  const unary = adminUnary(deps);
  const handlers: grpc.UntypedServiceImplementation = {
    Add: unary<{ target?: string; reason?: string; until?: string }>('DenyAdd', async (req, actor) => {
      const untilMs = parseUntil(req.until);
      const r = await addDenyEntry(deps.denyList(actor), { target: req.target ?? '', reason: req.reason ?? '', ...(untilMs !== undefined ? { untilMs } : {}) });
      deps.afterChange();
      return { outcome: r.outcome, target: r.entry.target };
    }),
    Remove: unary<{ target?: string }>('DenyRemove', async (req, actor) => {
      const r = await removeDenyEntry(deps.denyList(actor), req.target ?? '');
      deps.afterChange();
      return { outcome: r.outcome, target: r.target };
    }),
    List: unary('DenyList', async (_req, actor) => {
      const rows = denyListRows(deps.denyList(actor).store.read(), deps.statics, deps.clock.now());
      return {
        entries: rows.map((r) => ({ target: r.target, source: r.source, reason: r.reason, added_by: r.addedBy ?? '', added_at: r.addedAt ?? '', until: r.until ?? '', in_force: r.inForce })),
      };
    }),
  };
  return { service: serviceDefinition(DENY_LIST_SERVICE), handlers };
}
