import { create, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { Client, credentials, Metadata, type ServiceError as GrpcServiceError } from '@grpc/grpc-js';
import { CLIENT_CHANNEL_OPTIONS, methodDefinition } from './grpc-definition.js';
import { currentRequestContext, REQUEST_ID_HEADER } from './request-context.js';
import { startClientSpan } from './tracing.js';

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

type UnaryName<S extends GenServiceMethods> = keyof { [K in keyof S as S[K]['methodKind'] extends 'unary' ? K : never]: true } & string;

/** A promise-returning method per unary RPC of the service, named as protobuf-es names them. */
export type ServiceClient<S extends GenServiceMethods> = {
  [K in keyof S as S[K]['methodKind'] extends 'unary' ? K : never]: UnaryMethod<S[K]>;
} & {
  /**
   * The same call with the request and the answer as protobuf bytes: for a caller that writes requests and
   * reads answers itself (splicing stored submessages) rather than building and walking message objects.
   */
  raw(method: UnaryName<S>, request: Uint8Array, options?: CallOptions): Promise<Uint8Array>;
  close(): void;
  readonly address: string;
};

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
    ...CLIENT_CHANNEL_OPTIONS,
    ...options.channelOptions,
  });
  const unary = <T>(
    path: string,
    serialize: (value: T) => Buffer,
    deserialize: (bytes: Buffer) => unknown,
    request: T,
    callOptions: CallOptions,
  ): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const metadata = callOptions.metadata?.clone() ?? new Metadata();
      const context = currentRequestContext();
      if (context && metadata.get(REQUEST_ID_HEADER).length === 0) metadata.set(REQUEST_ID_HEADER, context.requestId);
      const deadline = effectiveDeadline(callOptions.timeoutMs ?? options.defaultTimeoutMs, context?.deadlineMs);
      const span = startClientSpan(path, metadata, address);
      const call = client.makeUnaryRequest(
        path,
        serialize,
        deserialize,
        request,
        metadata,
        deadline === Infinity ? {} : { deadline },
        (error: GrpcServiceError | null, response?: unknown) => {
          span?.endGrpc(error ? error.code : 0, error);
          if (error) reject(error);
          else resolve(response);
        },
      );
      callOptions.signal?.addEventListener('abort', () => call.cancel(), { once: true });
    });
  const methods: Record<string, unknown> = {};
  const paths = new Map<string, string>();
  for (const method of service.methods) {
    if (method.methodKind !== 'unary') continue;
    const definition = methodDefinition(service, method);
    paths.set(method.localName, definition.path);
    methods[method.localName] = (request: unknown, callOptions: CallOptions = {}) =>
      unary(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize as (bytes: Buffer) => unknown,
        create(method.input as DescMessage, request as never),
        callOptions,
      );
  }
  const raw = (method: string, request: Uint8Array, callOptions: CallOptions = {}) => {
    const path = paths.get(method);
    if (path === undefined) return Promise.reject(new TypeError(`${service.typeName} has no unary method ${method}`));
    return unary(path, toBuffer, identity, request, callOptions) as Promise<Uint8Array>;
  };
  return Object.assign(methods, {
    address,
    raw,
    close: () => client.close(),
  }) as unknown as ServiceClient<S>;
}

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const identity = (bytes: Buffer): Uint8Array => bytes;

/** The earlier of now + timeout and the caller's deadline; Infinity when neither is set. */
export function effectiveDeadline(timeoutMs: number | undefined, parentDeadlineMs: number | undefined, now = Date.now()): number {
  const own = timeoutMs === undefined || timeoutMs <= 0 ? Infinity : now + timeoutMs;
  return Math.min(own, parentDeadlineMs ?? Infinity);
}
