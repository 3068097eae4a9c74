// What a gRPC call says about its caller: the bearer token, the TLS client certificate, the peer
// address. Parsing only; deciding who the caller is belongs to src/authn.

import { X509Certificate } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { bearerTokenFrom, type AuthRequest } from '../authn/index.ts';
import { peerAddressOf } from '../transport/index.ts';

type AnyCall = { metadata: grpc.Metadata; getPeer(): string; getAuthContext?: () => { sslPeerCertificate?: { raw?: Buffer } } };

export function authRequestOf(call: AnyCall, deadlineMs?: number): AuthRequest {
  const bearerToken = bearerTokenFrom(call.metadata.get('authorization'));
  const clusterId = clusterIdFrom(call.metadata.get(CLUSTER_ID_HEADER));
  let peerCertificates: X509Certificate[] | undefined;
  // grpc-js exposes the client certificate only once TLS has verified it against our roots;
  // src/authn/mtls.ts then checks it was issued by one of our intermediates.
  const raw = call.getAuthContext?.().sslPeerCertificate?.raw;
  if (raw && raw.length > 0) {
    try {
      peerCertificates = [new X509Certificate(raw)];
    } catch {
      peerCertificates = undefined;
    }
  }
  return {
    ...(bearerToken ? { bearerToken } : {}),
    ...(peerCertificates ? { peerCertificates } : {}),
    peerAddress: peerAddressOf(call),
    ...(clusterId !== undefined ? { clusterId } : {}),
    ...(deadlineMs !== undefined ? { deadlineMs } : {}),
  };
}

/** istio-agent sends `ClusterID` (citadel/client.go); gRPC metadata keys are lower case on the wire. */
export const CLUSTER_ID_HEADER = 'clusterid';

function clusterIdFrom(values: grpc.MetadataValue[]): string | undefined {
  const first = values[0];
  if (typeof first !== 'string') return undefined;
  // An empty header means "no cluster named", as Istio's extractClusterID treats it.
  return first === '' ? undefined : first;
}

/** Absolute deadline of a call in ms since epoch, capped by `maxMs` from now. */
export function deadlineOf(call: { getDeadline(): grpc.Deadline }, nowMs: number, maxMs: number): number {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : typeof d === 'number' && Number.isFinite(d) ? d : Infinity;
  return Math.min(ms, nowMs + maxMs);
}
