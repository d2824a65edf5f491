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

function deadlineMsOf(call: ServerUnaryCall<unknown, unknown> | undefined): number {
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
    const requestContext = { requestId, deadlineMs: deadlineMsOf(call), method, span };
    const started = process.hrtime.bigint();
    const finish = (code: status, error?: unknown) => {
      this.metrics.handled.inc({ method, code: status[code] });
      this.metrics.latency.observe({ method }, Number(process.hrtime.bigint() - started) / 1e9);
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
            const code = grpcStatusOf(error);
            finish(code, error);
            const fields = { code: status[code], err: error };
            if (code === status.INTERNAL || code === status.UNKNOWN) this.logger.error(fields, 'rpc failed');
            else if (code === status.UNAVAILABLE) this.logger.warn(fields, 'rpc failed: dependency unavailable');
            else this.logger.debug(fields, 'rpc rejected');
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

/** Maps every error a handler throws to a gRPC status; internal details never reach the caller. */
@Catch()
export class GrpcExceptionFilter implements ExceptionFilter {
  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    const code = grpcStatusOf(exception);
    const message =
      code === status.INTERNAL || code === status.UNKNOWN
        ? 'internal error (see the service log for the request id)'
        : exception instanceof Error
          ? exception.message
          : String(exception);
    return throwError(() => ({ code, message, details: message }));
  }
}
