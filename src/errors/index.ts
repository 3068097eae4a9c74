// The error catalogue: every failure meshca reports to a user has a code here, a gRPC status and
// a message that says what was wrong and what is allowed. Messages never carry tokens or keys.

import { randomBytes } from 'node:crypto';

/** gRPC status codes we answer with (numeric values from grpc/status.proto). */
export const GrpcCode = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

const CATALOGUE = {
  // Input from a caller.
  BAD_SPIFFE_ID: GrpcCode.INVALID_ARGUMENT,
  BAD_CSR: GrpcCode.INVALID_ARGUMENT,
  UNSUPPORTED_KEY: GrpcCode.INVALID_ARGUMENT,
  BAD_TTL: GrpcCode.INVALID_ARGUMENT,
  BAD_REQUEST: GrpcCode.INVALID_ARGUMENT,
  REQUEST_TOO_LARGE: GrpcCode.RESOURCE_EXHAUSTED,
  // Who the caller is and what they may do.
  UNAUTHENTICATED: GrpcCode.UNAUTHENTICATED,
  PERMISSION_DENIED: GrpcCode.PERMISSION_DENIED,
  // The CA's own state.
  BAD_CONFIG: GrpcCode.INVALID_ARGUMENT,
  BAD_KEY_FILE: GrpcCode.FAILED_PRECONDITION,
  KEYS_EXIST: GrpcCode.ALREADY_EXISTS,
  KEYS_MISSING: GrpcCode.FAILED_PRECONDITION,
  BAD_CHAIN: GrpcCode.FAILED_PRECONDITION,
  ROTATION_REFUSED: GrpcCode.FAILED_PRECONDITION,
  // Dependencies.
  LEDGER_UNAVAILABLE: GrpcCode.UNAVAILABLE,
  AUTHN_UNAVAILABLE: GrpcCode.UNAVAILABLE,
  RATE_LIMITED: GrpcCode.UNAVAILABLE,
  CA_UNAVAILABLE: GrpcCode.UNAVAILABLE,
  /** The CA answered but its serving certificate did not verify (wrong root, wrong name): not an outage. */
  CA_UNTRUSTED: GrpcCode.UNAVAILABLE,
  /** The HSM holding the CA key does not answer (token removed, session lost): nothing is signed until it does. */
  SIGNER_UNAVAILABLE: GrpcCode.UNAVAILABLE,
  INTERNAL: GrpcCode.INTERNAL,
} as const satisfies Record<string, GrpcCode>;

export type ErrorCode = keyof typeof CATALOGUE;

/** A code that came from elsewhere (another process) names an entry of the catalogue. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(CATALOGUE, code);
}

export class MeshcaError extends Error {
  readonly code: ErrorCode;
  readonly grpcCode: GrpcCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MeshcaError';
    this.code = code;
    this.grpcCode = CATALOGUE[code];
  }
}

export function isMeshcaError(err: unknown, code?: ErrorCode): err is MeshcaError {
  return err instanceof MeshcaError && (code === undefined || err.code === code);
}

/** Where an internal error's detail goes: the log line that carries its correlation id. */
export interface InternalErrorLog {
  error(fields: { readonly correlationId: string; readonly err: unknown }, message: string): void;
}

export interface WireStatus {
  readonly code: GrpcCode;
  readonly details: string;
  /** Set for an internal error: the id the client was given and the log line carries. */
  readonly correlationId?: string;
}

/** One status per failure, however many layers ask: the client and the log share one id. */
const statuses = new WeakMap<object, WireStatus>();

/**
 * The one place an error becomes a wire status. An internal error (code INTERNAL, or anything that
 * is not a MeshcaError) never sends its message: the client gets a generic one with a correlation
 * id, and `log` gets the id with the error, so an operator can find one from the other.
 */
export function toGrpcStatus(err: unknown, log: InternalErrorLog): WireStatus {
  const known = typeof err === 'object' && err !== null ? statuses.get(err) : undefined;
  if (known) return known;
  let status: WireStatus;
  if (err instanceof MeshcaError && err.grpcCode !== GrpcCode.INTERNAL) {
    status = { code: err.grpcCode, details: err.message };
  } else {
    const correlationId = randomBytes(8).toString('hex');
    status = { code: GrpcCode.INTERNAL, details: `internal error (correlation id ${correlationId}); the CA log has the details`, correlationId };
    log.error({ correlationId, err }, 'internal error');
  }
  if (typeof err === 'object' && err !== null) statuses.set(err, status);
  return status;
}

/** Short human reason for a thrown value, safe to print on a command line. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
