import { EventEmitter } from 'node:events';
import {
  Metadata,
  status,
  type MethodDefinition,
  type ServiceDefinition,
  type ServiceError as GrpcServiceError,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';

/**
 * The in-process transport of the all-in-one mode: a service started with GRPC_LISTEN=in-process (or both) registers its
 * grpc-js handlers here under `inproc://<service name>`, and a client created for such an address calls them directly.
 * The request and the answer still cross as the same protobuf bytes the network path carries (the method's own
 * serialisers run on both sides), and the same Nest handlers, interceptor (request context, metrics) and exception filter
 * serve the call; what is left out is HTTP/2 framing, the socket and the event-loop turns around them.
 *
 * Kept on a global (not in this module's scope) so a second copy of this package in one process still finds the services.
 */
export const IN_PROCESS_SCHEME = 'inproc://';

export const inProcessAddress = (serviceName: string) => `${IN_PROCESS_SCHEME}${serviceName}`;

export const isInProcessAddress = (address: string) => address.startsWith(IN_PROCESS_SCHEME);

type UnaryHandler = (call: InProcessUnaryCall, callback: (error: unknown, value?: unknown) => void) => void;

/**
 * What serves an address in this process's registry: a service started here (InProcessServer), or a link to one on
 * another thread of the process (in-process-link).
 */
export interface InProcessEndpoint {
  call(path: string, request: Uint8Array, metadata: Metadata, deadlineMs: number, signal?: AbortSignal): Promise<Buffer>;
}

interface RegisteredMethod {
  definition: MethodDefinition<unknown, unknown>;
  handler: UnaryHandler;
}

const REGISTRY_KEY = Symbol.for('recsys.service-kit.in-process-registry');
interface Registry {
  readonly endpoints: Map<string, InProcessEndpoint>;
  /** Where a call to an address no endpoint here holds goes (a thread's link to the process's main thread). */
  fallback: InProcessEndpointResolver | undefined;
}
/** The endpoint that serves an address elsewhere, or undefined. */
export type InProcessEndpointResolver = (address: string) => InProcessEndpoint | undefined;
const globals = globalThis as unknown as Record<symbol, Registry | undefined>;
const registry: Registry = (globals[REGISTRY_KEY] ??= { endpoints: new Map(), fallback: undefined });

/**
 * Puts an endpoint at an address of this thread's registry (a link to a service on another thread); the returned
 * function takes it off again. Throws when the address is held.
 */
export function registerInProcessEndpoint(address: string, endpoint: InProcessEndpoint): () => void {
  if (!isInProcessAddress(address)) throw new TypeError(`an in-process address starts with ${IN_PROCESS_SCHEME}: ${address}`);
  if (registry.endpoints.has(address)) throw new Error(`${address} is already served in this process`);
  registry.endpoints.set(address, endpoint);
  return () => {
    if (registry.endpoints.get(address) === endpoint) registry.endpoints.delete(address);
  };
}

/**
 * Sends calls to addresses this thread does not serve to `resolver` (one per thread); the returned function takes it
 * off again.
 */
export function setInProcessFallback(resolver: InProcessEndpointResolver): () => void {
  if (registry.fallback !== undefined) throw new Error('this thread already sends unknown in-process addresses elsewhere');
  registry.fallback = resolver;
  return () => {
    if (registry.fallback === resolver) registry.fallback = undefined;
  };
}

/** The in-process services of this process (for tests and diagnostics). */
export function inProcessAddresses(): string[] {
  return [...registry.endpoints.keys()];
}

/** A grpc-js ServiceError as a network call would produce it, so callers' handling of codes is unchanged. */
export function grpcCallError(code: status, details: string, metadata = new Metadata()): GrpcServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata });
}

/** How whoever serves a call ends it: with its answer or its error (neither counts once the call has ended). */
export interface CallEnding {
  resolve(answer: Buffer): void;
  reject(error: Error): void;
}

/**
 * One call of the in-process transport (a handler here, or a call sent to another thread), ended by its answer or error
 * unless the caller's deadline (DEADLINE_EXCEEDED) or cancellation (CANCELLED) ends it first: `start` begins it with its
 * CallEnding; `ended` is told once it has ended, whichever way, and `stopped` when the caller ended it (whoever serves it
 * is to be told). A signal already aborted ends it before it starts.
 */
export function untilDeadline(
  deadlineMs: number,
  signal: AbortSignal | undefined,
  hooks: { ended(): void; stopped(): void },
  start: (ending: CallEnding) => void,
): Promise<Buffer> {
  if (signal?.aborted) return Promise.reject(grpcCallError(status.CANCELLED, 'Cancelled on client'));
  return new Promise<Buffer>((resolve, reject) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => stop(status.CANCELLED, 'Cancelled on client');
    /** True for the first end only. */
    const end = () => {
      if (done) return false;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      hooks.ended();
      return true;
    };
    const stop = (code: status, details: string) => {
      if (!end()) return;
      hooks.stopped();
      reject(grpcCallError(code, details));
    };
    if (Number.isFinite(deadlineMs))
      timer = setTimeout(() => stop(status.DEADLINE_EXCEEDED, 'Deadline exceeded'), Math.max(0, deadlineMs - Date.now()));
    signal?.addEventListener('abort', onAbort, { once: true });
    start({
      resolve: (answer) => {
        if (end()) resolve(answer);
      },
      reject: (error) => {
        if (end()) reject(error);
      },
    });
  });
}

/**
 * What a handler sees of an in-process call: the parts of grpc-js's ServerUnaryCall the handlers and Nest use
 * (request, metadata, deadline, path, cancellation).
 */
export class InProcessUnaryCall extends EventEmitter {
  cancelled = false;

  constructor(
    readonly request: unknown,
    readonly metadata: Metadata,
    private readonly deadlineMs: number,
    private readonly path: string,
  ) {
    super();
  }

  getDeadline(): Date | number {
    return Number.isFinite(this.deadlineMs) ? new Date(this.deadlineMs) : Infinity;
  }

  getPath(): string {
    return this.path;
  }

  getPeer(): string {
    return 'in-process';
  }

  getHost(): string {
    return 'in-process';
  }

  sendMetadata(): void {
    // Answers carry no header metadata in-process.
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
}

/**
 * Stands where Nest's gRPC transport expects a grpc-js Server: it takes the services Nest (and the health service) add,
 * registers their unary methods under the in-process address, and forwards everything to the network server too when
 * the service also listens on a port.
 */
export class InProcessServer implements InProcessEndpoint {
  private readonly methods = new Map<string, RegisteredMethod>();
  private readonly inFlight = new Set<InProcessUnaryCall>();
  private drained: (() => void) | undefined;
  private shuttingDown = false;
  private readonly unregister: () => void;

  constructor(
    readonly address: string,
    private readonly network?: {
      addService(service: ServiceDefinition, implementation: UntypedServiceImplementation): void;
      register(
        path: string,
        handler: never,
        serialize: (value: never) => Buffer,
        deserialize: (bytes: Buffer) => unknown,
        type: 'unary',
      ): boolean;
      tryShutdown(callback: (error?: Error) => void): void;
      forceShutdown(): void;
    },
  ) {
    this.unregister = registerInProcessEndpoint(address, this);
  }

  addService(service: ServiceDefinition, implementation: UntypedServiceImplementation): void {
    this.network?.addService(service, implementation);
    for (const [name, definition] of Object.entries(service) as [string, MethodDefinition<unknown, unknown>][]) {
      if (definition.requestStream || definition.responseStream) continue;
      const handler = (implementation[name] ?? implementation[definition.originalName ?? '']) as unknown as UnaryHandler | undefined;
      if (handler !== undefined) this.methods.set(definition.path, { definition, handler: handler.bind(implementation) });
    }
  }

  /**
   * One unary method registered as grpc-js's Server.register takes it (a method served without Nest): in-process under
   * its path, and on the network server too when there is one. False when the path is served already.
   */
  register(
    path: string,
    handler: UnaryHandler,
    serialize: (value: never) => Buffer,
    deserialize: (bytes: Buffer) => unknown,
    type: 'unary',
  ): boolean {
    if (this.methods.has(path)) return false;
    if (this.network && !this.network.register(path, handler as never, serialize, deserialize, type)) return false;
    const definition = {
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: () => {
        throw new TypeError('requests are not serialised in-process on the server side');
      },
      requestDeserialize: deserialize,
      responseSerialize: serialize as (value: unknown) => Buffer,
      responseDeserialize: (bytes: Buffer) => bytes,
    } satisfies MethodDefinition<unknown, unknown>;
    this.methods.set(path, { definition, handler });
    return true;
  }

  /** One unary call: the request's bytes in, the answer's bytes out, or a grpc-js-shaped error. */
  call(path: string, request: Uint8Array, metadata: Metadata, deadlineMs: number, signal?: AbortSignal): Promise<Buffer> {
    if (this.shuttingDown) return Promise.reject(grpcCallError(status.UNAVAILABLE, `${this.address} is shutting down`));
    const method = this.methods.get(path);
    if (method === undefined) return Promise.reject(grpcCallError(status.UNIMPLEMENTED, `${path} is not served at ${this.address}`));
    if (deadlineMs <= Date.now()) return Promise.reject(grpcCallError(status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
    if (signal?.aborted) return Promise.reject(grpcCallError(status.CANCELLED, 'Cancelled on client'));
    let decoded: unknown;
    try {
      decoded = method.definition.requestDeserialize(request as Buffer);
    } catch {
      return Promise.reject(grpcCallError(status.INTERNAL, 'Error deserializing request'));
    }
    const call = new InProcessUnaryCall(decoded, metadata, deadlineMs, path);
    this.inFlight.add(call);
    const ended = () => {
      this.inFlight.delete(call);
      if (this.inFlight.size === 0) this.drained?.();
    };
    // The caller's deadline or cancellation ends the call for the caller at once; the handler learns it through
    // `cancelled`, as on the network path.
    return untilDeadline(deadlineMs, signal, { ended, stopped: () => call.cancel() }, (ending) => {
      const callback = (error: unknown, value?: unknown) => {
        if (error) return ending.reject(fromHandlerError(error));
        let answer: Buffer;
        try {
          answer = method.definition.responseSerialize(value);
        } catch {
          return ending.reject(grpcCallError(status.INTERNAL, 'Failed to serialize response'));
        }
        ending.resolve(answer);
      };
      try {
        method.handler(call, callback);
      } catch (error) {
        callback(error);
      }
    });
  }

  /** Stops taking calls and calls back once those in flight have finished. */
  tryShutdown(callback: (error?: Error) => void): void {
    this.shuttingDown = true;
    let pending = 1 + (this.network ? 1 : 0);
    let failure: Error | undefined;
    const one = (error?: Error) => {
      failure ??= error;
      if (--pending === 0) {
        this.unregister();
        callback(failure);
      }
    };
    this.network?.tryShutdown(one);
    if (this.inFlight.size === 0) one();
    else this.drained = () => one();
  }

  /** Ends every call in flight (UNAVAILABLE to their callers) and leaves the registry. */
  forceShutdown(): void {
    this.shuttingDown = true;
    this.network?.forceShutdown();
    for (const call of [...this.inFlight]) call.cancel();
    this.unregister();
  }
}

/** A handler's error as the caller receives it: its gRPC code (UNKNOWN without one) and details, as grpc-js sends them. */
function fromHandlerError(error: unknown): GrpcServiceError {
  const { code, details, message, metadata } = (error ?? {}) as {
    code?: unknown;
    details?: unknown;
    message?: unknown;
    metadata?: unknown;
  };
  const grpcCode = typeof code === 'number' && status[code] !== undefined ? (code as status) : status.UNKNOWN;
  const text = typeof details === 'string' ? details : typeof message === 'string' ? message : 'Unknown Error';
  return grpcCallError(grpcCode, text, metadata instanceof Metadata ? metadata : new Metadata());
}

/**
 * A unary call to a service in this process: one registered on this thread, else where this thread's fallback sends it
 * (`local`: this thread's only, as for a call that came over a link). UNAVAILABLE when none is at the address (not
 * started, or stopped).
 */
export function callInProcess(
  address: string,
  path: string,
  request: Uint8Array,
  metadata: Metadata,
  deadlineMs: number,
  signal?: AbortSignal,
  local = false,
): Promise<Buffer> {
  const endpoint = registry.endpoints.get(address) ?? (local ? undefined : registry.fallback?.(address));
  if (endpoint === undefined) return Promise.reject(grpcCallError(status.UNAVAILABLE, `no service at ${address} in this process`));
  return endpoint.call(path, request, metadata, deadlineMs, signal);
}
