// The authenticator chain: first success wins; every reason is logged by the caller; the client
// gets one short reason without secrets. Refusals outrank outages: a token that some authenticator
// positively rejected is UNAUTHENTICATED even if another authenticator was unreachable.

import { MeshcaError } from '../errors/index.ts';
import type { Authenticator, AuthOutcome, AuthRequest, Caller } from './types.ts';

export interface ChainResult {
  readonly caller?: Caller;
  readonly error?: MeshcaError;
  /** Every authenticator's answer, for the log. */
  readonly trail: readonly { name: string; outcome: string }[];
}

export async function authenticateWithChain(chain: readonly Authenticator[], req: AuthRequest): Promise<ChainResult> {
  const trail: { name: string; outcome: string }[] = [];
  const failures: Extract<AuthOutcome, { ok: false }>[] = [];
  for (const authenticator of chain) {
    let outcome: AuthOutcome;
    try {
      outcome = await authenticator.authenticate(req);
    } catch {
      outcome = { ok: false, kind: 'unavailable', reason: `${authenticator.name} authenticator failed unexpectedly` };
    }
    if (outcome.ok) {
      trail.push({ name: authenticator.name, outcome: 'ok' });
      return { caller: outcome.caller, trail };
    }
    trail.push({ name: authenticator.name, outcome: `${outcome.kind}: ${outcome.reason}` });
    failures.push(outcome);
  }
  return { error: chainError(failures, req), trail };
}

function chainError(failures: Extract<AuthOutcome, { ok: false }>[], req: AuthRequest): MeshcaError {
  const refused = failures.find((f) => f.kind === 'refused');
  if (refused) return new MeshcaError('UNAUTHENTICATED', refused.reason);
  const unavailable = failures.find((f) => f.kind === 'unavailable');
  if (unavailable) {
    const hint = unavailable.retryAfterSeconds ? `; retry in ${unavailable.retryAfterSeconds}s` : '';
    return new MeshcaError('AUTHN_UNAVAILABLE', `${unavailable.reason}${hint}`);
  }
  if (req.bearerToken) {
    const specific = failures.find((f) => f.reason !== 'no bearer token' && f.reason !== 'no client certificate');
    return new MeshcaError('UNAUTHENTICATED', specific ? specific.reason : 'no authenticator accepts this token');
  }
  return new MeshcaError('UNAUTHENTICATED', 'no credentials: send "authorization: Bearer <token>" or a client certificate issued by this CA (with its intermediate; certificates that do not chain to this CA\'s roots are ignored)');
}
