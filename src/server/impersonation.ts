// CreateCertificate's `ImpersonatedIdentity` (Istio ambient): reading it from the request's
// metadata Struct, and turning a node agent into the workload it asks for, or refusing. Never
// falls back to the agent's own identity: a request that names someone else gets them or nothing.

import { IMPERSONATED_IDENTITY_FIELD, type Caller, type NodeAuthorizer } from '../authn/index.ts';
import { MeshcaError } from '../errors/index.ts';

interface StructValue {
  readonly kind?: string;
  readonly stringValue?: unknown;
}

/** The impersonated identity a request names, as Istio reads it (GetStringValue: empty means none). */
export function impersonatedIdentityOf(metadata: unknown): string | undefined {
  const fields = (metadata as { fields?: Record<string, StructValue> } | null | undefined)?.fields;
  const value = fields?.[IMPERSONATED_IDENTITY_FIELD];
  if (!value) return undefined;
  if (typeof value.stringValue !== 'string') {
    throw new MeshcaError('UNAUTHENTICATED', `ImpersonatedIdentity refused: the ${IMPERSONATED_IDENTITY_FIELD} metadata field must be a string`);
  }
  return value.stringValue === '' ? undefined : value.stringValue;
}

/** The caller the certificate is for: the workload when `agent` may impersonate it; throws otherwise. */
export function impersonate(agent: Caller, requested: string, authorizer: NodeAuthorizer | undefined): Caller {
  if (!authorizer) {
    throw new MeshcaError('UNAUTHENTICATED', `ImpersonatedIdentity refused: this CA trusts no node agents (--trusted-node-accounts is empty)`);
  }
  const outcome = authorizer.impersonate(agent, requested);
  if (outcome.ok) return outcome.caller;
  throw new MeshcaError(outcome.kind === 'unavailable' ? 'AUTHN_UNAVAILABLE' : 'UNAUTHENTICATED', outcome.reason);
}
