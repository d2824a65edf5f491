import { status } from '@grpc/grpc-js';

/** A domain error that knows its gRPC status; the exception filter maps it onto the wire. */
export abstract class ServiceError extends Error {
  abstract readonly code: status;
}

/** The request is malformed; the message names the field. */
export class InvalidArgumentError extends ServiceError {
  readonly code = status.INVALID_ARGUMENT;
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'InvalidArgumentError';
  }
}

/** A dependency (Redis, a downstream stage) cannot be reached; the caller may retry. */
export class UnavailableError extends ServiceError {
  readonly code = status.UNAVAILABLE;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnavailableError';
  }
}

/** The service sheds load: a queue is full or the wait would pass the caller's deadline. */
export class ResourceExhaustedError extends ServiceError {
  readonly code = status.RESOURCE_EXHAUSTED;
  constructor(message: string) {
    super(message);
    this.name = 'ResourceExhaustedError';
  }
}

export class NotFoundError extends ServiceError {
  readonly code = status.NOT_FOUND;
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** The gRPC status an error maps to: its own code when it has one, INTERNAL otherwise. */
export function grpcStatusOf(error: unknown): status {
  if (error instanceof ServiceError) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'number' && status[code] !== undefined) return code as status;
  return status.INTERNAL;
}
