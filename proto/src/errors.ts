/**
 * The one registry of KeyVa error codes. Codes are stable API; messages are not.
 * Each code maps explicitly to a gRPC status code and an HTTP status. `docs/errors.md`
 * documents every code; a test keeps this file, the docs and the types in step.
 */

/** gRPC status codes (numbers fixed by the gRPC spec; kept here so pure code needs no grpc import). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

interface ErrorSpec {
  readonly grpc: GrpcCode;
  readonly http: number;
  readonly retryable: boolean;
  readonly summary: string;
}

export const ErrorCodes = {
  KEY_EMPTY: { grpc: GrpcCode.INVALID_ARGUMENT, http: 400, retryable: false, summary: 'The key is empty; keys are 1 or more bytes.' },
  KEY_TOO_LARGE: {
    grpc: GrpcCode.INVALID_ARGUMENT,
    http: 400,
    retryable: false,
    summary: 'The key is longer than the configured maximum (details: limit, size).',
  },
  VALUE_TOO_LARGE: {
    grpc: GrpcCode.INVALID_ARGUMENT,
    http: 413,
    retryable: false,
    summary: 'The value is larger than the configured maximum (details: limit, size).',
  },
  INVALID_TTL: {
    grpc: GrpcCode.INVALID_ARGUMENT,
    http: 400,
    retryable: false,
    summary: 'The TTL is negative, not an integer, or above the maximum (details: limit).',
  },
  INVALID_CURSOR: {
    grpc: GrpcCode.INVALID_ARGUMENT,
    http: 400,
    retryable: false,
    summary: 'The scan cursor is malformed or belongs to another scan; start a new scan without a cursor.',
  },
  INVALID_ARGUMENT: { grpc: GrpcCode.INVALID_ARGUMENT, http: 400, retryable: false, summary: 'A request field is missing or invalid (details: field).' },
  INVALID_ENCODING: { grpc: GrpcCode.INVALID_ARGUMENT, http: 400, retryable: false, summary: 'The request body is not valid JSON, base64 or protobuf.' },
  BATCH_TOO_LARGE: {
    grpc: GrpcCode.INVALID_ARGUMENT,
    http: 413,
    retryable: false,
    summary: 'A batch holds more operations than the configured maximum (details: limit, size).',
  },
  MESSAGE_TOO_LARGE: {
    grpc: GrpcCode.RESOURCE_EXHAUSTED,
    http: 413,
    retryable: false,
    summary: 'The request message or body exceeds the maximum message size (details: limit).',
  },
  CONDITION_FAILED: {
    grpc: GrpcCode.FAILED_PRECONDITION,
    http: 412,
    retryable: false,
    summary: "The write's condition did not hold; nothing was written (details: currentVersion).",
  },
  KEY_NOT_FOUND: { grpc: GrpcCode.NOT_FOUND, http: 404, retryable: false, summary: 'The key does not exist (REST GET only; gRPC Get answers found=false).' },
  SNAPSHOT_TOO_OLD: {
    grpc: GrpcCode.FAILED_PRECONDITION,
    http: 410,
    retryable: false,
    summary: 'The snapshot timestamp is below the garbage-collection watermark; read at a newer timestamp.',
  },
  SNAPSHOT_IN_FUTURE: {
    grpc: GrpcCode.INVALID_ARGUMENT,
    http: 400,
    retryable: false,
    summary: 'The snapshot timestamp is ahead of the node clock by more than the allowed skew.',
  },
  ROUTE_NOT_FOUND: { grpc: GrpcCode.UNIMPLEMENTED, http: 404, retryable: false, summary: 'No such REST route or gRPC method.' },
  METHOD_NOT_ALLOWED: {
    grpc: GrpcCode.UNIMPLEMENTED,
    http: 405,
    retryable: false,
    summary: 'The HTTP method is not allowed on this route (see the Allow header).',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    grpc: GrpcCode.INVALID_ARGUMENT,
    http: 415,
    retryable: false,
    summary: 'The Content-Type is neither application/json nor application/octet-stream.',
  },
  NOT_LEADER: { grpc: GrpcCode.UNAVAILABLE, http: 421, retryable: true, summary: 'This replica is not the partition leader (details: epoch, leaderHint).' },
  WRONG_PARTITION: {
    grpc: GrpcCode.UNAVAILABLE,
    http: 421,
    retryable: true,
    summary: 'The routing information is stale (details: epoch); refresh the partition map.',
  },
  UNAVAILABLE: { grpc: GrpcCode.UNAVAILABLE, http: 503, retryable: true, summary: 'The node is starting, shutting down or overloaded; retry with backoff.' },
  DEADLINE_EXCEEDED: {
    grpc: GrpcCode.DEADLINE_EXCEEDED,
    http: 504,
    retryable: true,
    summary: 'The deadline passed before the operation finished; a write may or may not have applied.',
  },
  CANCELLED: { grpc: GrpcCode.CANCELLED, http: 499, retryable: false, summary: 'The caller cancelled the operation.' },
  STORAGE_ERROR: { grpc: GrpcCode.INTERNAL, http: 500, retryable: false, summary: 'The storage engine failed; the node logs say why.' },
  INTERNAL: { grpc: GrpcCode.INTERNAL, http: 500, retryable: false, summary: 'An unexpected error; please report it with the node logs.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ErrorCodes;

export const ERROR_CODE_LIST = Object.keys(ErrorCodes) as ErrorCode[];

export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(ErrorCodes, s);
}

/** Metadata keys carrying the KeyVa error on the wire (gRPC trailers, HTTP headers). */
export const ERROR_METADATA = {
  code: 'keyva-error-code',
  retryable: 'keyva-retryable',
  details: 'keyva-error-details',
} as const;

export type ErrorDetails = Record<string, string>;

/** The error type used everywhere in KeyVa: a stable code, a message for humans, details. */
export class KeyVaError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message?: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message ?? ErrorCodes[code].summary, options);
    this.name = 'KeyVaError';
    this.code = code;
    this.retryable = ErrorCodes[code].retryable;
    this.details = details;
  }

  get grpcCode(): GrpcCode {
    return ErrorCodes[this.code].grpc;
  }

  get httpStatus(): number {
    return ErrorCodes[this.code].http;
  }

  toJSON(): { code: ErrorCode; message: string; retryable: boolean; details: ErrorDetails } {
    return { code: this.code, message: this.message, retryable: this.retryable, details: this.details };
  }
}

export function isKeyVaError(e: unknown): e is KeyVaError {
  return e instanceof KeyVaError;
}

/** Maps a bare gRPC status (no KeyVa code in the trailers, e.g. from grpc-js itself) to a code. */
export function codeForGrpcStatus(status: number): ErrorCode {
  switch (status) {
    case GrpcCode.CANCELLED:
      return 'CANCELLED';
    case GrpcCode.DEADLINE_EXCEEDED:
      return 'DEADLINE_EXCEEDED';
    case GrpcCode.RESOURCE_EXHAUSTED:
      return 'MESSAGE_TOO_LARGE';
    case GrpcCode.UNAVAILABLE:
      return 'UNAVAILABLE';
    case GrpcCode.UNIMPLEMENTED:
      return 'ROUTE_NOT_FOUND';
    case GrpcCode.INVALID_ARGUMENT:
      return 'INVALID_ARGUMENT';
    case GrpcCode.NOT_FOUND:
      return 'KEY_NOT_FOUND';
    case GrpcCode.FAILED_PRECONDITION:
      return 'CONDITION_FAILED';
    default:
      return 'INTERNAL';
  }
}
