import { Controller, Module } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { Metadata, status } from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { features } from '@recsys/contracts';
import { baseServiceConfig, baseServiceEnv, ConfigError, parseEnv } from './config.js';
import { UnavailableError } from './errors.js';
import { createServiceClient, type ServiceClient } from './grpc-client.js';
import { startGrpcService, type RunningGrpcService } from './grpc-service.js';
import { createLogger } from './logger.js';
import { startTracing, tracingEnabled, traceLogFields } from './tracing.js';

type FeatureClient = ServiceClient<typeof features.FeatureService.method>;

/** What the back service saw: the traceparent it was sent, and the trace ids its log line carried. */
const seen: { traceparent: unknown[]; logged?: Record<string, unknown> }[] = [];
let downstream: FeatureClient | undefined;
const logLines: Record<string, unknown>[] = [];
const logger = createLogger('tracing-test', 'info', { write: (line: string) => void logLines.push(JSON.parse(line)) });

@Controller()
class ChainController {
  @GrpcMethod('FeatureService', 'GetUserFeatures')
  async getUserFeatures(request: features.GetUserFeaturesRequest, metadata: Metadata) {
    switch (request.userId) {
      case 'chain':
        // front → back: the second hop.
        await downstream!.getUserFeatures({ userId: 'leaf' });
        return { found: true };
      case 'chain-down':
        await downstream!.getUserFeatures({ userId: 'down' });
        return { found: true };
      case 'down':
        throw new UnavailableError('the store is unreachable');
      default:
        logger.info({ user: request.userId }, 'leaf served');
        seen.push({ traceparent: metadata.get('traceparent'), logged: logLines.at(-1) });
        return { found: false };
    }
  }
}

@Module({ controllers: [ChainController] })
class ChainModule {}

const config = baseServiceConfig(parseEnv(baseServiceEnv, { GRPC_PORT: '0' }));
const METHOD = 'recsys.features.v1.FeatureService/GetUserFeatures';

describe('tracing across two gRPC hops (real services over loopback, spans kept in memory)', () => {
  let front: RunningGrpcService;
  let back: RunningGrpcService;
  let client: FeatureClient;

  beforeAll(async () => {
    back = await startGrpcService({ name: 'back', module: ChainModule, services: [features.FeatureService], config, logger });
    front = await startGrpcService({ name: 'front', module: ChainModule, services: [features.FeatureService], config, logger });
    downstream = createServiceClient(features.FeatureService, back.address, { defaultTimeoutMs: 5000 });
    client = createServiceClient(features.FeatureService, front.address, { defaultTimeoutMs: 5000 });
  });

  afterAll(async () => {
    client.close();
    downstream?.close();
    await front.close();
    await back.close();
  });

  beforeEach(() => {
    seen.length = 0;
    logLines.length = 0;
  });

  it('is off by default: no trace context is sent, no trace ids are logged', async () => {
    expect(startTracing({ serviceName: 'x', env: {} })).toBeUndefined();
    expect(
      startTracing({ serviceName: 'x', env: { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' } }),
    ).toBeUndefined();
    expect(startTracing({ serviceName: 'x', env: { OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' } })).toBeUndefined();
    expect(tracingEnabled()).toBe(false);
    await client.getUserFeatures({ userId: 'chain' });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.traceparent).toEqual([]);
    expect(seen[0]!.logged).toMatchObject({ msg: 'leaf served' });
    expect(seen[0]!.logged).not.toHaveProperty('trace_id');
    expect(traceLogFields()).toBeUndefined();
  });

  it('refuses bad OTEL_* values naming the variable', () => {
    const variableOf = (env: Record<string, string>) => {
      try {
        void startTracing({ serviceName: 'x', env })?.release();
      } catch (error) {
        if (error instanceof ConfigError) return error.variable;
        throw error;
      }
      return 'accepted';
    };
    expect(variableOf({ OTEL_TRACES_EXPORTER: 'jaeger' })).toBe('OTEL_TRACES_EXPORTER');
    expect(variableOf({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'sometimes' })).toBe('OTEL_TRACES_SAMPLER');
    expect(variableOf({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER_ARG: '2' })).toBe('OTEL_TRACES_SAMPLER_ARG');
    expect(variableOf({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toBe('OTEL_EXPORTER_OTLP_ENDPOINT');
    expect(variableOf({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toBe('OTEL_EXPORTER_OTLP_PROTOCOL');
    expect(variableOf({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_PROPAGATORS: 'b3' })).toBe('OTEL_PROPAGATORS');
    expect(variableOf({ OTEL_SDK_DISABLED: 'maybe' })).toBe('OTEL_SDK_DISABLED');
    expect(tracingEnabled()).toBe(false);
  });

  it('follows one request through both hops: one trace id, parent/child links, traceparent in the metadata, trace ids in the logs', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = startTracing({ serviceName: 'chain-test', env: {}, exporter })!;
    try {
      expect(tracingEnabled()).toBe(true);
      // The caller's own span is the root, as a caller that traces would have.
      await trace.getTracer('test').startActiveSpan('caller', async (callerSpan) => {
        await client.getUserFeatures({ userId: 'chain' });
        callerSpan.end();
      });
      await tracing.flush();
      const spans = exporter.getFinishedSpans();
      expect(spans).toHaveLength(5);
      const callerSpan = spans.find((s) => s.name === 'caller')!;
      const rpc = spans.filter((s) => s.name === METHOD);
      expect(rpc.map((s) => SpanKind[s.kind]).sort()).toEqual(['CLIENT', 'CLIENT', 'SERVER', 'SERVER']);
      const traceId = callerSpan.spanContext().traceId;
      expect(new Set(rpc.map((s) => s.spanContext().traceId))).toEqual(new Set([traceId]));

      // caller → CLIENT(front) → SERVER(front) → CLIENT(back) → SERVER(back)
      const childOf = (parent: ReadableSpan, kind: SpanKind) =>
        rpc.filter((s) => s.kind === kind && s.parentSpanContext?.spanId === parent.spanContext().spanId);
      const [toFront] = childOf(callerSpan, SpanKind.CLIENT);
      const [atFront] = childOf(toFront!, SpanKind.SERVER);
      const [toBack] = childOf(atFront!, SpanKind.CLIENT);
      const [atBack] = childOf(toBack!, SpanKind.SERVER);
      expect(atBack).toBeDefined();
      expect(toFront!.attributes).toMatchObject({ 'rpc.system': 'grpc', 'rpc.service': 'recsys.features.v1.FeatureService' });
      expect(toFront!.attributes).toMatchObject({ 'rpc.method': 'GetUserFeatures', 'server.address': front.address });
      expect(atBack!.attributes).toMatchObject({ 'rpc.grpc.status_code': 0, 'recsys.request_id': expect.any(String) });
      // Both servers saw the request id the first client sent.
      expect(atBack!.attributes['recsys.request_id']).toBe(atFront!.attributes['recsys.request_id']);
      expect(atBack!.resource.attributes['service.name']).toBe('chain-test');

      // The back service got the W3C traceparent of the client span that called it, sampled.
      expect(seen[0]!.traceparent).toEqual([`00-${traceId}-${toBack!.spanContext().spanId}-01`]);
      // Its log line names its own server span.
      expect(seen[0]!.logged).toMatchObject({ trace_id: traceId, span_id: atBack!.spanContext().spanId, trace_flags: '01' });
    } finally {
      await tracing.release();
    }
    expect(tracingEnabled()).toBe(false);
  });

  it('marks failed calls: UNAVAILABLE is an error on both sides; the error status reaches the caller unchanged', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = startTracing({ serviceName: 'chain-test', env: {}, exporter })!;
    try {
      await expect(client.getUserFeatures({ userId: 'chain-down' })).rejects.toMatchObject({ code: status.UNAVAILABLE });
      await tracing.flush();
      const spans = exporter.getFinishedSpans();
      expect(spans).toHaveLength(4);
      expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
      for (const span of spans) {
        expect({ kind: SpanKind[span.kind], status: span.status.code }).toEqual({
          kind: SpanKind[span.kind],
          status: SpanStatusCode.ERROR,
        });
        expect(span.attributes['rpc.grpc.status_code']).toBe(status.UNAVAILABLE);
      }
      expect(spans.find((s) => s.kind === SpanKind.CLIENT && s.parentSpanContext === undefined)!.status.message).toContain('unreachable');
    } finally {
      await tracing.release();
    }
  });

  it('with OTEL_TRACES_SAMPLER=always_off records nothing but still propagates the (unsampled) context', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = startTracing({ serviceName: 'chain-test', env: { OTEL_TRACES_SAMPLER: 'always_off' }, exporter })!;
    try {
      await client.getUserFeatures({ userId: 'chain' });
      await tracing.flush();
      expect(exporter.getFinishedSpans()).toEqual([]);
      expect(seen[0]!.traceparent).toEqual([expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/)]);
    } finally {
      await tracing.release();
    }
  });
});
