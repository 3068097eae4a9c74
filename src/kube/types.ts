// The few Kubernetes object shapes meshca reads and writes, as plain JSON (only the fields used;
// whatever else the server sends is kept as it came, so a read-modify-write never drops a field).

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export interface ListMeta {
  resourceVersion?: string;
  continue?: string;
}

export interface ObjectList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: ListMeta;
  items: T[];
}

export interface Secret {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  type?: string;
  /** Values are base64. */
  data?: Record<string, string>;
}

export interface ConfigMap {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  data?: Record<string, string>;
}

export interface Namespace {
  metadata?: ObjectMeta;
  status?: { phase?: string };
}

export interface Pod {
  metadata?: ObjectMeta;
  spec?: { serviceAccountName?: string; nodeName?: string; [field: string]: unknown };
}

/** coordination.k8s.io/v1 Lease; times are RFC 3339 with microseconds (MicroTime). */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
    [field: string]: unknown;
  };
}

export interface MutatingWebhookConfiguration {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  webhooks?: Array<{ name: string; clientConfig: { caBundle?: string; [field: string]: unknown }; [field: string]: unknown }>;
}

export interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  audiences?: string[];
  error?: string;
}

export interface TokenReview {
  apiVersion?: string;
  kind?: string;
  spec: { token: string; audiences?: string[] };
  status?: TokenReviewStatus;
}

/** A Kubernetes MicroTime: RFC 3339 with six fractional digits, as client-go writes it. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
