import { create, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { Client, credentials, Metadata, type ServiceError as GrpcServiceError } from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, methodDefinition } from './grpc-definition.js';
import { currentRequestContext, REQUEST_ID_HEADER } from './request-context.js';

export interface CallOptions {
  /** This call's own timeout; the effective deadline is the earlier of it and the caller's. */
  timeoutMs?: number;
  metadata?: Metadata;
  /** Lets the caller cancel the call (e.g. when the overall request was answered already). */
  signal?: AbortSignal;
}

type UnaryMethod<M extends GenServiceMethods[string]> = (
  request: MessageInitShape<M['input']>,
  options?: CallOptions,
) => Promise<MessageShape<M['output']>>;

/** A promise-returning method per unary RPC of the service, named as protobuf-es names them. */
export type ServiceClient<S extends GenServiceMethods> = {
  [K in keyof S as S[K]['methodKind'] extends 'unary' ? K : never]: UnaryMethod<S[K]>;
} & { close(): void; readonly address: string };

export interface ClientOptions {
  /** Timeout for calls that set none, when there is no caller deadline to inherit. */
  defaultTimeoutMs?: number;
  channelOptions?: Record<string, string | number>;
}

/**
 * A typed client whose calls carry the deadline of the request being served (deadline
 * propagation) and its request id, so one user request keeps one budget and one id across stages.
 */
export function createServiceClient<S extends GenServiceMethods>(
  service: GenService<S>,
  address: string,
  options: ClientOptions = {},
): ServiceClient<S> {
  const client = new Client(address, credentials.createInsecure(), {
    ...CHANNEL_OPTIONS,
    ...options.channelOptions,
  });
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    if (method.methodKind !== 'unary') continue;
    const definition = methodDefinition(service, method);
    methods[method.localName] = (request: unknown, callOptions: CallOptions = {}) =>
      new Promise((resolve, reject) => {
        const metadata = callOptions.metadata?.clone() ?? new Metadata();
        const context = currentRequestContext();
        if (context && metadata.get(REQUEST_ID_HEADER).length === 0) metadata.set(REQUEST_ID_HEADER, context.requestId);
        const deadline = effectiveDeadline(callOptions.timeoutMs ?? options.defaultTimeoutMs, context?.deadlineMs);
        const call = client.makeUnaryRequest(
          definition.path,
          definition.requestSerialize,
          definition.responseDeserialize as (bytes: Buffer) => unknown,
          create(method.input as DescMessage, request as never),
          metadata,
          deadline === Infinity ? {} : { deadline },
          (error: GrpcServiceError | null, response?: unknown) => (error ? reject(error) : resolve(response)),
        );
        callOptions.signal?.addEventListener('abort', () => call.cancel(), { once: true });
      });
  }
  return Object.assign(methods, {
    address,
    close: () => client.close(),
  }) as unknown as ServiceClient<S>;
}

/** The earlier of now + timeout and the caller's deadline; Infinity when neither is set. */
export function effectiveDeadline(timeoutMs: number | undefined, parentDeadlineMs: number | undefined, now = Date.now()): number {
  const own = timeoutMs === undefined || timeoutMs <= 0 ? Infinity : now + timeoutMs;
  return Math.min(own, parentDeadlineMs ?? Infinity);
}
