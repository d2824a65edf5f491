import {
  Catch,
  Injectable,
  type ArgumentsHost,
  type CallHandler,
  type ExceptionFilter,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { status, type Metadata, type ServerUnaryCall } from '@grpc/grpc-js';
import { Observable, throwError } from 'rxjs';
import { grpcStatusOf } from './errors.js';
import type { Logger } from './logger.js';
import type { ServiceMetrics } from './metrics.js';
import { requestIdFrom, runWithRequestContext } from './request-context.js';
import { startServerSpan } from './tracing.js';
import { UndecodableRequest } from './undecodable-request.js';

type GrpcArgs = [unknown, Metadata | undefined, ServerUnaryCall<unknown, unknown> | undefined];

/** The call's deadline as epoch milliseconds; Infinity without one. */
export function deadlineMsOf(call: Pick<ServerUnaryCall<unknown, unknown>, 'getDeadline'> | undefined): number {
  const deadline = call?.getDeadline();
  if (deadline instanceof Date) return deadline.getTime();
  return typeof deadline === 'number' && Number.isFinite(deadline) ? deadline : Infinity;
}

/**
 * Around every RPC: a request context (id, deadline) for logs and downstream calls, latency and
 * status-code metrics, and one log line per failed call.
 */
@Injectable()
export class GrpcObservabilityInterceptor implements NestInterceptor {
  constructor(
    private readonly metrics: ServiceMetrics,
    private readonly logger: Logger,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const [request, metadata, call] = context.getArgs<GrpcArgs>();
    const method = call?.getPath?.() ?? `${context.getClass().name}.${context.getHandler().name}`;
    const requestId = requestIdFrom(metadata);
    const span = startServerSpan(method, metadata, requestId);
    const requestContext = { requestId, deadlineMs: deadlineMsOf(call), receivedMs: Date.now(), method, span };
    const started = performance.now();
    const recorder = this.metrics.recorder(method);
    const finish = (code: status, error?: unknown) => {
      recorder.done(code, (performance.now() - started) / 1000);
      span?.endGrpc(code, error);
    };
    // The handler runs on subscription, so subscribing inside the context covers all it awaits.
    return new Observable((subscriber) => {
      // In flight from subscription to the end of the call however it ends (answered, failed or cancelled).
      this.metrics.inFlight.inc();
      const subscription = runWithRequestContext(requestContext, () =>
        (request instanceof UndecodableRequest ? throwError(() => request.toError()) : next.handle()).subscribe({
          next: (value) => subscriber.next(value),
          error: (error: unknown) => {
            finish(logCallFailure(this.logger, error), error);
            subscriber.error(error);
          },
          complete: () => {
            finish(status.OK);
            subscriber.complete();
          },
        }),
      );
      // Teardown runs once, after completion, an error or the caller's cancellation.
      return () => {
        subscription.unsubscribe();
        this.metrics.inFlight.dec();
      };
    });
  }
}

/** One log line for a failed call, at the level its status deserves; returns the status. */
export function logCallFailure(logger: Logger, error: unknown): status {
  const code = grpcStatusOf(error);
  const fields = { code: status[code], err: error };
  if (code === status.INTERNAL || code === status.UNKNOWN) logger.error(fields, 'rpc failed');
  else if (code === status.UNAVAILABLE) logger.warn(fields, 'rpc failed: dependency unavailable');
  else logger.debug(fields, 'rpc rejected');
  return code;
}

/**
 * The one error mapping: what the caller receives for an error a handler threw (its gRPC status; the message of a domain
 * error, which names the field; never internal details).
 */
export function toGrpcError(exception: unknown): { code: status; message: string; details: string } {
  const code = grpcStatusOf(exception);
  const message =
    code === status.INTERNAL || code === status.UNKNOWN
      ? 'internal error (see the service log for the request id)'
      : exception instanceof Error
        ? exception.message
        : String(exception);
  return { code, message, details: message };
}

/** Maps every error a Nest handler throws to a gRPC status (toGrpcError). */
@Catch()
export class GrpcExceptionFilter implements ExceptionFilter {
  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    return throwError(() => toGrpcError(exception));
  }
}
