// Who may call the admin APIs: an authenticated caller whose SPIFFE ID is in --admins. Shared by
// the rotation and deny-list services, so both refuse (and log) in the same words.

import type * as grpc from '@grpc/grpc-js';
import type { Caller } from '../authn/index.ts';
import { MeshcaError, toGrpcStatus } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';

export type AdminCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getPeer' | 'getAuthContext'>;

export interface AdmissionDeps {
  /** SPIFFE IDs allowed to use the admin APIs. */
  readonly admins: readonly string[];
  readonly authenticate: (call: AdminCall) => Promise<Caller>;
  readonly log: Pick<Logger, 'info' | 'warn' | 'error'>;
}

/** A unary handler that admits the caller first, passes its SPIFFE ID as the actor and maps errors once. */
export function adminUnary(deps: AdmissionDeps): <Req>(method: string, run: (req: Req, actor: string) => Promise<unknown>) => grpc.handleUnaryCall<Req, unknown> {
  const admins = new Set(deps.admins);
  async function admit(call: AdminCall, method: string): Promise<string> {
    const caller = await deps.authenticate(call);
    const id = caller.spiffeId.uri;
    if (!admins.has(id)) {
      deps.log.warn({ caller: id, method }, 'admin request refused: not an admin');
      throw new MeshcaError('PERMISSION_DENIED', `${id} is not an admin (--admins)`);
    }
    deps.log.info({ caller: id, method }, 'admin request');
    return id;
  }
  return (method, run) => (call, callback) => {
    void (async () => {
      try {
        const actor = await admit(call, method);
        callback(null, await run(call.request, actor));
      } catch (err) {
        callback(toGrpcStatus(err, deps.log));
      }
    })();
  };
}
