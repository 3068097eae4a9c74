// Kubernetes `Status` objects exactly as the API server sends them for failures (meta/v1 Status),
// so clients parse the fake's errors the way they parse the real ones.

export interface KubeStatus {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Failure' | 'Success';
  readonly message?: string;
  readonly reason?: string;
  readonly details?: { name?: string; group?: string; kind?: string; uid?: string; retryAfterSeconds?: number };
  readonly code: number;
}

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Expired'
  | 'Invalid'
  | 'UnsupportedMediaType'
  | 'MethodNotAllowed'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable';

const CODE_OF: Record<StatusReason, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  AlreadyExists: 409,
  Conflict: 409,
  Gone: 410,
  Expired: 410,
  UnsupportedMediaType: 415,
  Invalid: 422,
  TooManyRequests: 429,
  InternalError: 500,
  ServiceUnavailable: 503,
};

export function failureStatus(reason: StatusReason, message: string, details?: KubeStatus['details']): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code: CODE_OF[reason] };
}

export function reasonForCode(code: number): StatusReason {
  const found = (Object.entries(CODE_OF) as [StatusReason, number][]).find(([, c]) => c === code);
  return found ? found[0] : 'InternalError';
}

export function successStatus(details: KubeStatus['details']): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details, code: 200 };
}

/** A failure the request handlers throw; the server turns it into a Status response. */
export class KubeApiError extends Error {
  readonly status: KubeStatus;
  readonly retryAfterSeconds?: number;
  constructor(status: KubeStatus, retryAfterSeconds?: number) {
    super(status.message);
    this.status = status;
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
  }
}

export function kubeError(reason: StatusReason, message: string, details?: KubeStatus['details']): KubeApiError {
  return new KubeApiError(failureStatus(reason, message, details));
}
