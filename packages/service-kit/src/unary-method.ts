import type { DescService } from '@bufbuild/protobuf';
import { status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { EncodedMessage } from './encoded-message.js';
import type { Logger } from './logger.js';
import type { ServiceMetrics } from './metrics.js';
import { deadlineMsOf, logCallFailure, toGrpcError } from './observability.js';
import { requestIdFrom, runWithRequestContext, type RequestContext } from './request-context.js';
import { startServerSpan } from './tracing.js';

/**
 * A hot unary method served on grpc-js directly rather than through Nest's per-call path (guards, interceptors, pipes,
 * observables): the request arrives as its protobuf bytes (the handler reads what it needs, e.g. with
 * readCandidateRequest) and the answer leaves as bytes. The thin wrapper keeps what the Nest path gave a call: its request
 * context (id, deadline: reachable by everything the handler awaits, so downstream calls inherit them), the server span
 * while tracing is on, grpc_server_handled_total / grpc_server_handling_seconds / in-flight (ServiceMetrics.recorder), the failure log line and the
 * one error mapping (toGrpcError). It serves the in-process transport the same way.
 */
export interface UnaryBytesMethod {
  service: DescService;
  /** The method's protobuf-es local name ("rank"). */
  method: string;
  handle(request: Uint8Array, context: RequestContext): Promise<Uint8Array | EncodedMessage>;
}

/** The grpc-js path of a method: `/<package.Service>/<Method>`. */
export function methodPath(service: DescService, localName: string): string {
  const method = service.methods.find((m) => m.localName === localName);
  if (method === undefined) throw new TypeError(`${service.typeName} has no method ${localName}`);
  if (method.methodKind !== 'unary') throw new TypeError(`${service.typeName}.${method.name} is not unary`);
  return `/${service.typeName}/${method.name}`;
}

/** The bytes as they arrived: the handler reads them. */
export const keepRequestBytes = (bytes: Buffer): Uint8Array => bytes;

/** An answer the handler wrote as bytes, sent as it is. */
export function answerBytes(value: Uint8Array | EncodedMessage): Buffer {
  const bytes = value instanceof EncodedMessage ? value.bytes : value;
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The grpc-js handler of a UnaryBytesMethod (see there). */
export function unaryBytesHandler(
  spec: UnaryBytesMethod,
  metrics: ServiceMetrics,
  logger: Logger,
): (call: ServerUnaryCall<Uint8Array, Buffer>, callback: sendUnaryData<Uint8Array | EncodedMessage>) => void {
  const path = methodPath(spec.service, spec.method);
  const recorder = metrics.recorder(path);
  const handle = spec.handle.bind(spec);
  return (call, callback) => {
    const started = performance.now();
    const metadata = call.metadata;
    const requestId = requestIdFrom(metadata);
    const span = startServerSpan(path, metadata, requestId);
    const context: RequestContext = { requestId, deadlineMs: deadlineMsOf(call), method: path, span };
    metrics.inFlight.inc();
    let answer: Promise<Uint8Array | EncodedMessage>;
    try {
      answer = runWithRequestContext(context, () => handle(call.request, context));
    } catch (error) {
      answer = Promise.reject(error);
    }
    answer.then(
      (value) => {
        metrics.inFlight.dec();
        recorder.done(status.OK, (performance.now() - started) / 1000);
        span?.endGrpc(status.OK, undefined);
        callback(null, value);
      },
      (error: unknown) => {
        metrics.inFlight.dec();
        const code = logCallFailure(logger, error);
        recorder.done(code, (performance.now() - started) / 1000);
        span?.endGrpc(code, error);
        const { details } = toGrpcError(error);
        callback({ code, details, message: details });
      },
    );
  };
}
