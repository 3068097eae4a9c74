// The parts of Envoy's discovery requests SDS reads, and the checks every request passes first.
// Never logs resource contents; error_detail from a proxy is logged only as its message.

import { MeshcaError } from '../errors/index.ts';
import { SECRET_TYPE_URL } from './secrets.ts';

/** envoy.service.discovery.v3.DiscoveryRequest, as proto-loader decodes it (keepCase). */
export interface DiscoveryRequest {
  version_info?: string;
  node?: { id?: string; cluster?: string };
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
}

/** envoy.service.discovery.v3.DeltaDiscoveryRequest. */
export interface DeltaDiscoveryRequest {
  node?: { id?: string; cluster?: string };
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
}

/** xDS wildcard marker (a request for every resource the server has). */
export const WILDCARD = '*';

/**
 * An SDS stream serves one type; the type URL may be left empty (it is implied by the service),
 * anything else is a configuration mistake on the proxy and is refused.
 */
export function checkTypeUrl(typeUrl: string | undefined): void {
  if (typeUrl && typeUrl !== SECRET_TYPE_URL) {
    throw new MeshcaError('BAD_REQUEST', `type URL "${typeUrl.slice(0, 200)}" is not served here; SDS serves ${SECRET_TYPE_URL}`);
  }
}

export function nodeIdOf(req: { node?: { id?: string } }): string | undefined {
  return req.node?.id || undefined;
}
