import { create, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { Client, credentials, Metadata, status, type ServiceError as GrpcServiceError } from '@grpc/grpc-js';
import { clientChannelOptions, methodDefinition } from './grpc-definition.js';
import { callInProcess, grpcCallError, isInProcessAddress } from './in-process.js';
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

/** How a client sends one unary call: over a grpc-js channel, or to a handler in this process. */
type UnaryTransport = <T>(
  path: string,
  serialize: (value: T) => Buffer,
  deserialize: (bytes: Buffer) => unknown,
  request: T,
  metadata: Metadata,
  deadline: number,
  signal: AbortSignal | undefined,
) => Promise<unknown>;

/**
 * A typed client whose calls carry the deadline of the request being served (deadline
 * propagation) and its request id, so one user request keeps one budget and one id across stages.
 * An `inproc://NAME` address calls the service NAME started in this process (all-in-one mode) with the same
 * request bytes, deadline, metadata and status codes, without a channel.
 */
export function createServiceClient<S extends GenServiceMethods>(
  service: GenService<S>,
  address: string,
  options: ClientOptions = {},
): ServiceClient<S> {
  const { transport, close } = isInProcessAddress(address) ? inProcessTransport(address) : channelTransport(address, options);
  const unary = <T>(
    path: string,
    serialize: (value: T) => Buffer,
    deserialize: (bytes: Buffer) => unknown,
    request: T,
    callOptions: CallOptions,
  ): Promise<unknown> => {
    const metadata = callOptions.metadata?.clone() ?? new Metadata();
    const context = currentRequestContext();
    if (context && metadata.get(REQUEST_ID_HEADER).length === 0) metadata.set(REQUEST_ID_HEADER, context.requestId);
    const deadline = effectiveDeadline(callOptions.timeoutMs ?? options.defaultTimeoutMs, context?.deadlineMs);
    const span = startClientSpan(path, metadata, address);
    const answer = transport(path, serialize, deserialize, request, metadata, deadline, callOptions.signal);
    if (span === undefined) return answer;
    return answer.then(
      (response) => {
        span.endGrpc(0, null);
        return response;
      },
      (error: GrpcServiceError) => {
        span.endGrpc(typeof error?.code === 'number' ? error.code : status.UNKNOWN, error);
        throw error;
      },
    );
  };
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
    close,
  }) as unknown as ServiceClient<S>;
}

function channelTransport(address: string, options: ClientOptions): { transport: UnaryTransport; close: () => void } {
  const client = new Client(address, credentials.createInsecure(), {
    ...clientChannelOptions(address),
    ...options.channelOptions,
  });
  const transport: UnaryTransport = (path, serialize, deserialize, request, metadata, deadline, signal) =>
    new Promise((resolve, reject) => {
      const call = client.makeUnaryRequest(
        path,
        serialize,
        deserialize,
        request,
        metadata,
        deadline === Infinity ? {} : { deadline },
        (error: GrpcServiceError | null, response?: unknown) => (error ? reject(error) : resolve(response)),
      );
      signal?.addEventListener('abort', () => call.cancel(), { once: true });
    });
  return { transport, close: () => client.close() };
}

/** The same serialisers as the channel's, so the handler receives, and the caller reads, exactly the network's bytes. */
function inProcessTransport(address: string): { transport: UnaryTransport; close: () => void } {
  let closed = false;
  const transport: UnaryTransport = async (path, serialize, deserialize, request, metadata, deadline, signal) => {
    if (closed) throw new Error(`the client for ${address} is closed`);
    const answer = await callInProcess(address, path, serialize(request), metadata, deadline, signal);
    try {
      return deserialize(answer);
    } catch {
      throw grpcCallError(status.INTERNAL, 'Failed to parse server response');
    }
  };
  return { transport, close: () => (closed = true) };
}

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const identity = (bytes: Buffer): Uint8Array => bytes;

/** The earlier of now + timeout and the caller's deadline; Infinity when neither is set. */
export function effectiveDeadline(timeoutMs: number | undefined, parentDeadlineMs: number | undefined, now = Date.now()): number {
  const own = timeoutMs === undefined || timeoutMs <= 0 ? Infinity : now + timeoutMs;
  return Math.min(own, parentDeadlineMs ?? Infinity);
}
