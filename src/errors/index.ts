// The error catalogue: every failure meshca reports to a user has a code here, a gRPC status and
// a message that says what was wrong and what is allowed. Messages never carry tokens or keys.

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

/** The one place an error becomes a wire status. Unknown errors never leak their message. */
export function toGrpcStatus(err: unknown): { code: GrpcCode; details: string } {
  if (err instanceof MeshcaError) return { code: err.grpcCode, details: err.message };
  return { code: GrpcCode.INTERNAL, details: 'internal error; the CA log has the details' };
}

/** Short human reason for a thrown value, safe to print on a command line. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
