import {
  context,
  diag,
  DiagLogLevel,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';
import type * as ContextAsyncHooks from '@opentelemetry/context-async-hooks';
import type * as Core from '@opentelemetry/core';
import type * as OtlpExporter from '@opentelemetry/exporter-trace-otlp-proto';
import type * as Resources from '@opentelemetry/resources';
import type * as SdkTrace from '@opentelemetry/sdk-trace';
import type { Sampler, SpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';
import { z } from 'zod';
import { booleanVar, parseEnv } from './config.js';

/**
 * OpenTelemetry tracing for every service: a SERVER span per call served, a CLIENT span per call made (W3C
 * `traceparent` in the gRPC metadata), exported over OTLP as the standard `OTEL_*` variables say. Off unless
 * OTEL_TRACES_EXPORTER=otlp: then every hook below is one check of `tracer` and returns, and the SDK is not
 * even loaded (about 16 MiB and half a second of start-up).
 */

/* eslint-disable @typescript-eslint/no-require-imports -- the SDK modules load only when tracing is turned on */
function loadSdk() {
  return {
    ...(require('@opentelemetry/sdk-trace') as typeof SdkTrace),
    ...(require('@opentelemetry/context-async-hooks') as typeof ContextAsyncHooks),
    ...(require('@opentelemetry/core') as typeof Core),
    ...(require('@opentelemetry/exporter-trace-otlp-proto') as typeof OtlpExporter),
    ...(require('@opentelemetry/resources') as typeof Resources),
  };
}
/* eslint-enable @typescript-eslint/no-require-imports */
type Sdk = ReturnType<typeof loadSdk>;

const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;

const url = z.string().regex(/^https?:\/\/[^\s/]+/, 'must be an http(s) URL such as http://otel-collector:4318');
const positiveInt = z.coerce.number().int().positive();

/** The standard variables this module reads itself; the OTLP exporter reads its own (endpoint, headers, timeout, TLS). */
export const tracingEnv = {
  OTEL_SDK_DISABLED: booleanVar.default(false),
  /** Off by default (the specification's default is otlp): tracing costs nothing until asked for. */
  OTEL_TRACES_EXPORTER: z
    .string()
    .trim()
    .toLowerCase()
    .refine((v) => v === 'none' || v === 'otlp', 'expected otlp or none (the only exporters this build ships)')
    .default('none'),
  OTEL_EXPORTER_OTLP_PROTOCOL: z
    .enum(['http/protobuf'], { message: 'only http/protobuf is supported (the collector port 4318)' })
    .optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z
    .enum(['http/protobuf'], { message: 'only http/protobuf is supported (the collector port 4318)' })
    .optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: url.optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url.optional(),
  OTEL_SERVICE_NAME: z.string().trim().min(1).optional(),
  OTEL_TRACES_SAMPLER: z.enum(SAMPLERS).default('parentbased_always_on'),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
  OTEL_PROPAGATORS: z
    .string()
    .transform((text) => text.split(',').map((p) => p.trim().toLowerCase()))
    .refine((list) => list.every((p) => p === 'tracecontext' || p === 'baggage'), 'expected a list of tracecontext, baggage')
    .default(['tracecontext', 'baggage']),
  OTEL_BSP_SCHEDULE_DELAY: positiveInt.default(5000),
  OTEL_BSP_EXPORT_TIMEOUT: positiveInt.default(30000),
  OTEL_BSP_MAX_QUEUE_SIZE: positiveInt.default(2048),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: positiveInt.default(512),
};

export type TracingEnv = z.infer<z.ZodObject<typeof tracingEnv>>;

export interface TracingOptions {
  /** service.name unless OTEL_SERVICE_NAME sets it. */
  serviceName: string;
  env?: NodeJS.ProcessEnv;
  /** Where spans go instead of OTLP (tests): exported one by one as they end. */
  exporter?: SpanExporter;
  /** Receives the SDK's own warnings and errors (a collector that cannot be reached). */
  logger?: { warn(fields: object, message: string): void; error(fields: object, message: string): void };
}

/** A started tracing setup; the last release flushes the spans still queued and turns tracing off. */
export interface Tracing {
  readonly serviceName: string;
  flush(): Promise<void>;
  release(): Promise<void>;
}

// The one switch of the hot path: undefined while tracing is off.
let tracer: Tracer | undefined;
let active: { provider: TracerProvider; serviceName: string; users: number } | undefined;

/** Whether spans are being made in this process. */
export function tracingEnabled(): boolean {
  return tracer !== undefined;
}

function samplerOf(env: TracingEnv, sdk: Sdk): Sampler {
  const { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler } = sdk;
  const ratio = () => new TraceIdRatioBasedSampler(env.OTEL_TRACES_SAMPLER_ARG ?? 1);
  switch (env.OTEL_TRACES_SAMPLER) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/**
 * Starts tracing for this process when the environment asks for it (or an exporter is given); undefined
 * when it stays off. Invalid variables throw ConfigError naming the variable. Services sharing a process
 * share one setup (the first one's service name).
 */
export function startTracing(options: TracingOptions): Tracing | undefined {
  const env = parseEnv(tracingEnv, options.env ?? process.env);
  if (!options.exporter && (env.OTEL_SDK_DISABLED || env.OTEL_TRACES_EXPORTER === 'none')) return undefined;
  if (!active) {
    const sdk = loadSdk();
    const { BatchSpanProcessor, SimpleSpanProcessor, OTLPTraceExporter, TracerProvider } = sdk;
    const { AsyncLocalStorageContextManager, CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = sdk;
    const { detectResources, envDetector, resourceFromAttributes } = sdk;
    if (options.logger) diag.setLogger(diagToLogger(options.logger), DiagLogLevel.WARN);
    const serviceName = env.OTEL_SERVICE_NAME ?? options.serviceName;
    // OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME come in through the env detector; the service's name is the fallback.
    const resource = resourceFromAttributes({ 'service.name': serviceName }).merge(detectResources({ detectors: [envDetector] }));
    const processor = options.exporter
      ? new SimpleSpanProcessor({ exporter: options.exporter })
      : new BatchSpanProcessor({
          exporter: new OTLPTraceExporter(),
          scheduledDelayMillis: env.OTEL_BSP_SCHEDULE_DELAY,
          exportTimeoutMillis: env.OTEL_BSP_EXPORT_TIMEOUT,
          maxQueueSize: env.OTEL_BSP_MAX_QUEUE_SIZE,
          maxExportBatchSize: Math.min(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, env.OTEL_BSP_MAX_QUEUE_SIZE),
        });
    const provider = new TracerProvider({ resource, sampler: samplerOf(env, sdk), spanProcessors: [processor] });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    const propagators = [
      ...(env.OTEL_PROPAGATORS.includes('tracecontext') ? [new W3CTraceContextPropagator()] : []),
      ...(env.OTEL_PROPAGATORS.includes('baggage') ? [new W3CBaggagePropagator()] : []),
    ];
    propagation.setGlobalPropagator(new CompositePropagator({ propagators }));
    trace.setGlobalTracerProvider(provider);
    active = { provider, serviceName, users: 0 };
    tracer = provider.getTracer('@recsys/service-kit');
  }
  const setup = active;
  setup.users++;
  let released = false;
  return {
    serviceName: setup.serviceName,
    flush: () => setup.provider.forceFlush(),
    release: async () => {
      if (released) return;
      released = true;
      if (--setup.users > 0) return setup.provider.forceFlush();
      if (active === setup) {
        tracer = undefined;
        active = undefined;
        trace.disable();
        propagation.disable();
        context.disable();
        diag.disable();
      }
      await setup.provider.shutdown();
    },
  };
}

function diagToLogger(logger: NonNullable<TracingOptions['logger']>) {
  const format = (args: unknown[]) => (args.length ? { details: args.map(String) } : {});
  return {
    error: (message: string, ...args: unknown[]) => logger.error(format(args), `tracing: ${message}`),
    warn: (message: string, ...args: unknown[]) => logger.warn(format(args), `tracing: ${message}`),
    info: () => undefined,
    debug: () => undefined,
    verbose: () => undefined,
  };
}

/** gRPC metadata (values are arrays) or an HTTP request (`get(name)`), read alike. */
export interface HeaderCarrier {
  get(key: string): unknown;
}

const getter: TextMapGetter<HeaderCarrier> = {
  keys: () => [],
  get: (carrier, key) => {
    const value = carrier.get(key);
    if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
    return typeof value === 'string' ? value : undefined;
  },
};

const setter: TextMapSetter<{ set(key: string, value: string): unknown }> = {
  set: (carrier, key, value) => void carrier.set(key, value),
};

// Statuses a server reports as its own error (the OpenTelemetry RPC conventions); others are the caller's.
const SERVER_ERROR_CODES = new Set([2, 4, 12, 13, 14, 15]);

/** "/pkg.Service/Method" as span name "pkg.Service/Method" with its rpc.* attributes. */
function rpcAttributes(path: string): [name: string, attributes: Attributes] {
  const name = path.startsWith('/') ? path.slice(1) : path;
  const slash = name.lastIndexOf('/');
  return [name, { 'rpc.system': 'grpc', 'rpc.service': name.slice(0, slash), 'rpc.method': name.slice(slash + 1) }];
}

/** A span and the context it is current in; made only while tracing is on. */
export class CallSpan {
  constructor(
    readonly span: Span,
    private readonly context: Context,
    private readonly server: boolean,
  ) {}

  /** Runs `fn` with this span current: logs carry its ids, calls made inside are its children. */
  run<T>(fn: () => T): T {
    return context.with(this.context, fn);
  }

  /** Ends a gRPC call's span with its status code (0 = OK). */
  endGrpc(code: number, error?: unknown): void {
    this.span.setAttribute('rpc.grpc.status_code', code);
    if (code !== 0 && (!this.server || SERVER_ERROR_CODES.has(code))) this.fail(error);
    this.span.end();
  }

  /** Ends an HTTP request's span with its response status. */
  endHttp(statusCode: number): void {
    this.span.setAttribute('http.response.status_code', statusCode);
    if (statusCode >= 500) this.span.setStatus({ code: SpanStatusCode.ERROR });
    this.span.end();
  }

  private fail(error: unknown): void {
    const message = (error as { details?: unknown } | undefined)?.details ?? (error instanceof Error ? error.message : undefined);
    this.span.setStatus({ code: SpanStatusCode.ERROR, ...(typeof message === 'string' ? { message } : {}) });
  }
}

/**
 * The SERVER span of a call served: the caller's `traceparent` (gRPC metadata or HTTP headers) is its parent.
 * `name` is the gRPC path, or "METHOD /route" with `http` set.
 */
export function startServerSpan(
  name: string,
  carrier: HeaderCarrier | undefined,
  requestId: string,
  http?: { method: string; route: string },
): CallSpan | undefined {
  if (!tracer) return undefined;
  const parent = carrier ? propagation.extract(ROOT_CONTEXT, carrier, getter) : ROOT_CONTEXT;
  const [spanName, attributes] = http ? [name, { 'http.request.method': http.method, 'http.route': http.route }] : rpcAttributes(name);
  const span = tracer.startSpan(spanName, { kind: SpanKind.SERVER, attributes: { ...attributes, 'recsys.request_id': requestId } }, parent);
  return new CallSpan(span, trace.setSpan(parent, span), true);
}

/** The CLIENT span of a call made, child of the current span; writes its `traceparent` into `metadata`. */
export function startClientSpan(
  path: string,
  metadata: { set(key: string, value: string): unknown },
  address: string,
): CallSpan | undefined {
  if (!tracer) return undefined;
  const parent = context.active();
  const [name, attributes] = rpcAttributes(path);
  const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes: { ...attributes, 'server.address': address } }, parent);
  const current = trace.setSpan(parent, span);
  propagation.inject(current, metadata, setter);
  return new CallSpan(span, current, false);
}

/** The current span's ids for a log line (OpenTelemetry's log field names); undefined when there is none. */
export function traceLogFields(): { trace_id: string; span_id: string; trace_flags: string } | undefined {
  if (!tracer) return undefined;
  const spanContext = trace.getSpan(context.active())?.spanContext();
  if (!spanContext || !isSpanContextValid(spanContext)) return undefined;
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId, trace_flags: `0${spanContext.traceFlags.toString(16)}` };
}
