import { status } from '@grpc/grpc-js';
import { ResourceExhaustedError, ServiceError } from '@recsys/service-kit';

/** No valid API key was presented; HTTP answers 401 with `WWW-Authenticate: Bearer`. */
export class UnauthenticatedError extends ServiceError {
  readonly code = status.UNAUTHENTICATED;
  constructor(message: string) {
    super(message);
    this.name = 'UnauthenticatedError';
  }
}

/** A key spent its rate-limit tokens; carries the whole seconds after which a retry will be admitted (HTTP `Retry-After`). */
export class RateLimitedError extends ResourceExhaustedError {
  constructor(
    readonly keyName: string,
    readonly retryAfterS: number,
  ) {
    super(`rate limit exceeded for API key "${keyName}"; retry after ${retryAfterS}s`);
    this.name = 'RateLimitedError';
  }
}

/** What an error becomes on the REST API. */
export interface HttpError {
  status: number;
  code: string;
  field?: string;
  message: string;
  headers: Record<string, string>;
}

const HTTP_STATUS_OF_GRPC: Partial<Record<status, number>> = {
  [status.INVALID_ARGUMENT]: 400,
  [status.FAILED_PRECONDITION]: 400,
  [status.OUT_OF_RANGE]: 400,
  [status.UNAUTHENTICATED]: 401,
  [status.PERMISSION_DENIED]: 403,
  [status.NOT_FOUND]: 404,
  [status.ALREADY_EXISTS]: 409,
  [status.RESOURCE_EXHAUSTED]: 429,
  [status.CANCELLED]: 499,
  [status.UNIMPLEMENTED]: 501,
  [status.UNAVAILABLE]: 503,
  [status.DEADLINE_EXCEEDED]: 504,
};

const CODE_OF_HTTP_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RESOURCE_EXHAUSTED',
  503: 'UNAVAILABLE',
};

/** A 4xx/5xx answered by the transport itself (body parser, routing), not by a domain error. */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** What the refusal is about (body, content-type, a path parameter's field), when it is about one. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'HttpStatusError';
  }
}

const INTERNAL_MESSAGE = 'internal error (the gateway log has the details under this request id)';

/**
 * Maps an error to a status and body. Only our own errors' messages reach the caller; anything else (a bug,
 * a raw gRPC error naming internal addresses) is INTERNAL with a fixed message.
 */
export function httpErrorOf(error: unknown): HttpError {
  if (error instanceof HttpStatusError) {
    return {
      status: error.status,
      code: CODE_OF_HTTP_STATUS[error.status] ?? `HTTP_${error.status}`,
      message: error.message,
      headers: {},
      ...(error.field !== undefined ? { field: error.field } : {}),
    };
  }
  if (error instanceof ServiceError) {
    const httpStatus = HTTP_STATUS_OF_GRPC[error.code] ?? 500;
    if (httpStatus === 500) return { status: 500, code: 'INTERNAL', message: INTERNAL_MESSAGE, headers: {} };
    const headers: Record<string, string> = {};
    if (error.code === status.UNAUTHENTICATED) headers['WWW-Authenticate'] = 'Bearer';
    if (error.code === status.RESOURCE_EXHAUSTED) {
      // A rate limit's or admission control's own back-off; 1 s for any other exhaustion.
      const retryAfterS = (error as { retryAfterS?: unknown }).retryAfterS;
      headers['Retry-After'] = String(typeof retryAfterS === 'number' ? retryAfterS : 1);
    }
    const field = (error as { field?: unknown }).field;
    return {
      status: httpStatus,
      code: status[error.code],
      message: error.message,
      headers,
      ...(typeof field === 'string' ? { field } : {}),
    };
  }
  return { status: 500, code: 'INTERNAL', message: INTERNAL_MESSAGE, headers: {} };
}
