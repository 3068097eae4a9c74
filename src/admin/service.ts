// meshca.admin.v1.RotationService: the rotation steps over gRPC for callers whose SPIFFE ID is in
// --admins. Parses, authenticates, authorises, calls src/rotation, maps errors once. Never accepts
// key material over the wire.

import * as grpc from '@grpc/grpc-js';
import type { Ledger } from '../ledger/index.ts';
import { parseKeyType, type KeyType } from '../pki/index.ts';
import { activateRoot, prepareRoot, retireRoot, rootStepPolicy, rotateIntermediate, rotationStatus, type RotationContext } from '../rotation/index.ts';
import type { Clock } from '../time/index.ts';
import { ADMIN_SERVICE, serviceClient, serviceDefinition } from '../transport/index.ts';
import { adminUnary, type AdmissionDeps } from './admission.ts';

export interface AdminServiceDeps extends AdmissionDeps {
  /** The rotation context acting for `actor` (the admin's SPIFFE ID goes into the ledger). */
  readonly rotation: (actor: string) => RotationContext;
  readonly defaultKeyType: KeyType;
  /** Called after a step changed the key store, so this serve follows at once. */
  readonly afterChange: () => void;
  readonly ledger?: Pick<Ledger, 'query'>;
  readonly clock: Clock;
}

/** A client constructor for the admin API (tools, tests). */
export function adminServiceClient(): grpc.ServiceClientConstructor {
  return serviceClient(ADMIN_SERVICE);
}

interface StepResponse {
  outcome: string;
  key_id?: string;
  previous_key_id?: string;
  warning?: string;
}

export function createAdminService(deps: AdminServiceDeps): { service: grpc.ServiceDefinition; handlers: grpc.UntypedServiceImplementation } {
  const keyTypeOf = (text: string | undefined) => (text ? parseKeyType(text) : deps.defaultKeyType);
  const unary = adminUnary(deps);

  const step = async (actor: string, f: (ctx: RotationContext) => Promise<StepResponse>): Promise<StepResponse> => {
    const out = await f(deps.rotation(actor));
    deps.afterChange();
    return out;
  };

  const handlers: grpc.UntypedServiceImplementation = {
    Status: unary('Status', async (_req, actor) => {
      const ctx = deps.rotation(actor);
      const snapshot = ctx.store.snapshot(deps.clock.now());
      const s = await rotationStatus(snapshot, deps.clock.now(), await rootStepPolicy(ctx, snapshot.state), deps.ledger);
      return {
        version: s.version,
        bundle_root_key_ids: s.bundle.rootKeyIds,
        next_step: s.nextStep.step,
        next_step_allowed_at: s.nextStep.allowedAt,
        next_step_why: s.nextStep.why,
        status_json: JSON.stringify(s),
      };
    }),
    PrepareRoot: unary<{ key_type?: string }>('PrepareRoot', (req, actor) =>
      step(actor, async (ctx) => {
        const r = await prepareRoot(ctx, { keyType: keyTypeOf(req.key_type) });
        return { outcome: r.outcome, key_id: r.rootKeyId };
      }),
    ),
    ActivateRoot: unary<{ force?: boolean }>('ActivateRoot', (req, actor) =>
      step(actor, async (ctx) => {
        const r = await activateRoot(ctx, { force: req.force === true });
        return { outcome: r.outcome, key_id: r.rootKeyId, previous_key_id: r.previousRootKeyId ?? '', warning: r.warning ?? '' };
      }),
    ),
    RetireRoot: unary<{ force?: boolean }>('RetireRoot', (req, actor) =>
      step(actor, async (ctx) => {
        const r = await retireRoot(ctx, { force: req.force === true });
        return { outcome: r.outcome, key_id: r.rootKeyId ?? '', warning: r.warning ?? '' };
      }),
    ),
    RotateIntermediate: unary<{ key_type?: string }>('RotateIntermediate', (req, actor) =>
      step(actor, async (ctx) => {
        const r = await rotateIntermediate(ctx, { keyType: keyTypeOf(req.key_type), now: true });
        return { outcome: 'activated', key_id: r.keyId ?? '' };
      }),
    ),
  };
  return { service: serviceDefinition(ADMIN_SERVICE), handlers };
}
