import { request as httpRequest } from 'node:http';
import { create } from '@bufbuild/protobuf';
import { Metadata } from '@grpc/grpc-js';
import { common, gateway } from '@recsys/contracts';
import {
  createLogger,
  currentRequestContext,
  NotFoundError,
  ResourceExhaustedError,
  ServiceMetrics,
  UnavailableError,
  type RequestContext,
} from '@recsys/service-kit';
import { Admission, AdmittedGatewayApi, admissionMetrics } from '../admission.js';
import { loadGatewayConfig, type GatewayConfig } from '../config.js';
import type { Caller, GatewayApi } from '../gateway-api.js';
import { validateFeedbackRequest, validateRecommendRequest, validateSimilarRequest } from '../validation.js';
import { GrpcAccess } from './grpc-access.js';
import { startHttpServer, type RunningHttpServer } from './http-app.js';
import { feedbackResponseJson, recommendResponseJson, similarResponseJson } from './rest-schemas.js';

const WEB_KEY = 'web-key-0123456789abcdef';
const CLI_KEY = 'cli-key-0123456789abcdef';

interface RecordedCall {
  method: keyof GatewayApi;
  request: unknown;
  caller: Caller;
  context: RequestContext | undefined;
  /** When the call reached the API (epoch ms). */
  atMs: number;
}

/**
 * A test double of the orchestrator, to test the transport layer alone: it validates as the GatewayApi contract
 * requires (with the same shared functions the orchestrator calls), records what reached it, and answers from the
 * request. `failWith` makes the next call throw, to check the error mapping.
 */
class RecordingApi implements GatewayApi {
  readonly calls: RecordedCall[] = [];
  failWith: Error | undefined;
  /** How long the next recommendation takes (ms). */
  delayMs = 0;

  constructor(private readonly config: GatewayConfig) {}

  private record(method: keyof GatewayApi, request: unknown, caller: Caller): void {
    this.calls.push({ method, request, caller, context: currentRequestContext(), atMs: Date.now() });
    const error = this.failWith;
    this.failWith = undefined;
    if (error) throw error;
  }

  async recommend(request: gateway.RecommendRequest, caller: Caller): Promise<gateway.RecommendResponse> {
    validateRecommendRequest(request, this.config.limits);
    this.record('recommend', request, caller);
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.delayMs = 0;
    const k = request.k || this.config.limits.defaultK;
    return create(gateway.RecommendResponseSchema, {
      items: Array.from({ length: k }, (_, i) => ({ itemId: `${request.userId}-item-${i}`, score: 1 / (i + 1), channels: ['two_tower'] })),
      requestId: caller.requestId,
      timings: [{ stage: common.Stage.RETRIEVAL, durationMs: 1.5, candidatesIn: 0, candidatesOut: k }],
      totalMs: 2,
    });
  }

  async sendFeedback(request: gateway.SendFeedbackRequest, caller: Caller): Promise<gateway.SendFeedbackResponse> {
    validateFeedbackRequest(request, this.config.limits);
    this.record('sendFeedback', request, caller);
    return create(gateway.SendFeedbackResponseSchema, { accepted: request.events.length, duplicates: 0 });
  }

  async similarItems(request: gateway.GetSimilarItemsRequest, caller: Caller): Promise<gateway.GetSimilarItemsResponse> {
    validateSimilarRequest(request, this.config.limits);
    this.record('similarItems', request, caller);
    return create(gateway.GetSimilarItemsResponseSchema, { items: [{ itemId: `like-${request.itemId}`, score: 0.9, category: 'c' }] });
  }
}

function gatewayConfig(env: Record<string, string> = {}): GatewayConfig {
  return loadGatewayConfig({ HTTP_PORT: '0', API_KEYS: `web:${WEB_KEY},cli:${CLI_KEY}`, MAX_BODY_BYTES: '2048', ...env });
}

const logger = createLogger('gateway-http-test', 'silent');

/** A JSON answer read loosely: the assertions check its shape. */
type LooseJson = { [key: string]: LooseJson };

async function call(base: string, path: string, init: RequestInit & { key?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.key) headers.set('authorization', `Bearer ${init.key}`);
  if (typeof init.body === 'string' && !headers.has('content-type')) headers.set('content-type', 'application/json');
  const res = await fetch(base + path, { ...init, headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: keep the text for the assertion message.
  }
  return { status: res.status, headers: res.headers, body: body as LooseJson };
}

const post = (base: string, path: string, body: unknown, key = WEB_KEY, headers: Record<string, string> = {}) =>
  call(base, path, { method: 'POST', body: JSON.stringify(body), key, headers });

describe('REST API (startHttpServer)', () => {
  let config: GatewayConfig;
  let api: RecordingApi;
  let metrics: ServiceMetrics;
  let server: RunningHttpServer;
  let base: string;

  beforeAll(async () => {
    config = gatewayConfig();
    api = new RecordingApi(config);
    metrics = new ServiceMetrics('gateway');
    server = await startHttpServer(api, config, logger, metrics);
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(() => server.close());
  beforeEach(() => {
    api.calls.length = 0;
  });

  it('answers /healthz and /openapi.json without a key', async () => {
    const health = await call(base, '/healthz');
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok' });
    expect(health.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

    const doc = await call(base, '/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.paths).sort()).toEqual([
      '/healthz',
      '/openapi.json',
      '/v1/feedback',
      '/v1/items/{id}/similar',
      '/v1/recommendations',
    ]);
    expect(Object.keys(doc.body.paths['/v1/recommendations']).sort()).toEqual(['get', 'post']);
    expect(doc.body.components.securitySchemes.apiKey).toEqual({ type: 'apiKey', in: 'header', name: 'x-api-key' });
    expect(doc.body.components.schemas.RecommendRequest.properties.user_id).toEqual({ type: 'string' });
    expect(doc.body.components.schemas.RecommendRequest.additionalProperties).toBe(false);
    for (const code of ['400', '401', '413', '429', '503'])
      expect(doc.body.paths['/v1/recommendations'].post.responses[code]).toBeDefined();
    const getParams = (doc.body.paths['/v1/recommendations'].get.parameters as unknown as Array<{ name?: string }>).map((p) => p.name);
    expect(getParams).toEqual(expect.arrayContaining(['user_id', 'k', 'recent', 'include_categories', 'debug', 'budget_ms']));
  });

  it('refuses a missing, wrong or wrongly-sent key with 401 and WWW-Authenticate', async () => {
    const wrongSameLength = WEB_KEY.slice(0, -1) + (WEB_KEY.endsWith('f') ? 'e' : 'f');
    const attempts = [
      await post(base, '/v1/recommendations', { user_id: 'u1' }, ''),
      await post(base, '/v1/recommendations', { user_id: 'u1' }, wrongSameLength),
      await post(base, '/v1/recommendations', { user_id: 'u1' }, WEB_KEY.slice(0, 10)),
      await call(base, '/v1/recommendations?user_id=u1', { headers: { authorization: `Basic ${WEB_KEY}` } }),
    ];
    for (const res of attempts) {
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(res.body.error.code).toBe('UNAUTHENTICATED');
    }
    expect(api.calls).toHaveLength(0);
    expect(await metrics.registry.getSingleMetricAsString('gateway_auth_failures_total')).toMatch(/ 4$/m);
  });

  it('answers a POST recommendation with either key header, in the request context', async () => {
    const bearer = await post(base, '/v1/recommendations', { user_id: 'u1', k: 3 }, WEB_KEY, { 'x-request-id': 'client-req-1' });
    expect(bearer.status).toBe(200);
    expect(bearer.headers.get('x-request-id')).toBe('client-req-1');
    expect(recommendResponseJson.parse(bearer.body).items.map((i) => i.item_id)).toEqual(['u1-item-0', 'u1-item-1', 'u1-item-2']);
    expect(bearer.body.timings[0].stage).toBe('STAGE_RETRIEVAL');

    const sentMs = Date.now();
    const apiKey = await call(base, '/v1/recommendations', {
      method: 'POST',
      body: JSON.stringify({ user_id: 'u2' }),
      headers: { 'x-api-key': CLI_KEY, 'x-request-id': 'not a valid id!' },
    });
    expect(apiKey.status).toBe(200);
    const echoed = apiKey.headers.get('x-request-id')!;
    expect(echoed).toMatch(/^[0-9a-f-]{36}$/);

    expect(api.calls.map((c) => [c.caller.keyName, c.caller.requestId])).toEqual([
      ['web', 'client-req-1'],
      ['cli', echoed],
    ]);
    // receivedMs: when the request arrived, before its body was read and admitted (the budget counts from it).
    expect(api.calls[1]!.context).toEqual({
      requestId: echoed,
      deadlineMs: Infinity,
      receivedMs: expect.any(Number),
      method: 'POST /v1/recommendations',
    });
    expect(api.calls[1]!.context!.receivedMs).toBeGreaterThanOrEqual(sentMs);
    expect(api.calls[1]!.context!.receivedMs).toBeLessThanOrEqual(api.calls[1]!.atMs);
  });

  it("tells the gateway's own time of every answer in Server-Timing, refusals included", async () => {
    api.delayMs = 60;
    const sent = performance.now();
    const slow = await post(base, '/v1/recommendations', { user_id: 'u1', k: 3 });
    const elapsed = performance.now() - sent;
    expect(slow.status).toBe(200);
    const total = Number(/^total;dur=(\d+\.\d)$/.exec(slow.headers.get('server-timing') ?? '')?.[1]);
    expect(total).toBeGreaterThanOrEqual(59);
    expect(total).toBeLessThanOrEqual(elapsed);

    api.failWith = new ResourceExhaustedError('queue full');
    const shed = await post(base, '/v1/recommendations', { user_id: 'u1' });
    expect(shed.status).toBe(429);
    expect(shed.headers.get('server-timing')).toMatch(/^total;dur=\d+\.\d$/);
  });

  it('parses the GET form into the same request as the equivalent body', async () => {
    const query = 'user_id=u1&k=5&recent=item-1,item-2&include_categories=a,b&exclude_categories=c&debug=true&budget_ms=90';
    const get = await call(base, `/v1/recommendations?${query}`, { key: WEB_KEY });
    expect(get.status).toBe(200);
    const body = {
      user_id: 'u1',
      k: 5,
      context: { recent_items: [{ item_id: 'item-1' }, { item_id: 'item-2' }] },
      filter: { include_categories: ['a', 'b'], exclude_categories: ['c'] },
      debug: true,
      budget_ms: 90,
    };
    expect((await post(base, '/v1/recommendations', body)).status).toBe(200);
    expect(api.calls).toHaveLength(2);
    expect(api.calls[0]!.request).toEqual(api.calls[1]!.request);
  });

  it.each([
    ['a wrong JSON type', { user_id: 42 }, 'user_id'],
    ['an unknown field', { user_id: 'u1', colour: 'red' }, 'colour'],
    ['a nested unknown field', { user_id: 'u1', filter: { include_category: ['x'] } }, 'filter.include_category'],
    ['an empty id', { user_id: '' }, 'user_id'],
    [
      'a bad context item id',
      { user_id: 'u1', context: { recent_items: [{ item_id: 'ok' }, { item_id: 'bad\u0001' }] } },
      'context.recent_items[1].item_id',
    ],
    ['k above the maximum', { user_id: 'u1', k: 201 }, 'k'],
    ['a negative budget', { user_id: 'u1', budget_ms: -1 }, 'budget_ms'],
  ])('answers 400 naming the field for %s', async (_what, body, field) => {
    const res = await post(base, '/v1/recommendations', body);
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual({ code: 'INVALID_ARGUMENT', field, message: expect.stringContaining(`${field}: `) });
  });

  it('answers 400 for malformed JSON and unknown query parameters', async () => {
    const malformed = await call(base, '/v1/recommendations', { method: 'POST', body: '{"user_id": "u1",', key: WEB_KEY });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.message).toMatch(/not valid JSON/);
    // Regression (fuzz): transport-level refusals named no field.
    expect(malformed.body.error.field).toBe('body');
    const badPath = await call(base, '/v1/items/%ff/similar', { key: WEB_KEY });
    expect(badPath.status).toBe(400);
    expect(badPath.body.error.field).toBe('item_id');

    const unknown = await call(base, '/v1/recommendations?user_id=u1&page=2', { key: WEB_KEY });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.field).toBe('page');
    const repeated = await call(base, '/v1/recommendations?user_id=u1&k=1&k=2', { key: WEB_KEY });
    expect(repeated.body.error.field).toBe('k');
    expect(api.calls).toHaveLength(0);
  });

  // Regression (resilience fuzz): a body sent a byte at a time held its connection for Node's default 5 minutes.
  it('cuts off a slow-loris body after HTTP_REQUEST_TIMEOUT_MS with 408', async () => {
    const slow = await startHttpServer(
      new RecordingApi(gatewayConfig()),
      gatewayConfig({ HTTP_REQUEST_TIMEOUT_MS: '300' }),
      logger,
      new ServiceMetrics('gateway'),
    );
    try {
      const answer = await new Promise<{ status: number | undefined; body: string }>((resolve) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port: slow.port,
            method: 'POST',
            path: '/v1/recommendations',
            headers: { authorization: `Bearer ${WEB_KEY}`, 'content-type': 'application/json', 'content-length': 100 },
          },
          (res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => resolve({ status: res.statusCode, body }));
          },
        );
        req.on('error', () => resolve({ status: undefined, body: '' }));
        req.write('{');
        // Nothing more: the body never completes.
      });
      expect(answer.status).toBe(408);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'REQUEST_TIMEOUT', field: 'body' } });
    } finally {
      await slow.close();
    }
  });

  it('answers 413 for a body over the limit and 415 for a body that is not JSON', async () => {
    const big = await post(base, '/v1/recommendations', { user_id: 'u1', context: { attributes: { pad: 'x'.repeat(4096) } } });
    expect(big.status).toBe(413);
    expect(big.body.error.message).toContain('2048 bytes');
    expect(big.body.error.field).toBe('body');

    const text = await call(base, '/v1/recommendations', {
      method: 'POST',
      body: 'user_id=u1',
      key: WEB_KEY,
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(415);
    expect(text.body.error.field).toBe('content-type');
    const charset = await call(base, '/v1/recommendations', {
      method: 'POST',
      body: '{"user_id":"u1"}',
      key: WEB_KEY,
      headers: { 'content-type': 'application/json; charset=latin1' },
    });
    expect(charset.status).toBe(415);
    expect(charset.body.error.field).toBe('content-type');
    expect(api.calls).toHaveLength(0);
  });

  it('stores feedback and answers the counts', async () => {
    const res = await post(base, '/v1/feedback', {
      events: [
        { user_id: 'u1', item_id: 'i1', event_type: 'click' },
        { event_id: 'e2', user_id: 'u1', item_id: 'i2', event_type: 'EVENT_TYPE_PURCHASE', timestamp_ms: '1700000000000' },
      ],
    });
    expect(res.status).toBe(200);
    expect(feedbackResponseJson.parse(res.body)).toEqual({ accepted: 2, duplicates: 0 });
    const sent = api.calls[0]!.request as gateway.SendFeedbackRequest;
    expect(sent.events.map((e) => e.eventType)).toEqual([common.EventType.CLICK, common.EventType.PURCHASE]);

    const bad = await post(base, '/v1/feedback', { events: [{ user_id: 'u1', item_id: 'i1', event_type: 'unspecified' }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('events[0].event_type');
  });

  it('answers similar items for an escaped id, and 404 when the item is unknown', async () => {
    const res = await call(base, '/v1/items/item%201/similar?k=3&exclude_categories=x', { key: WEB_KEY });
    expect(res.status).toBe(200);
    expect(similarResponseJson.parse(res.body).items[0]!.item_id).toBe('like-item 1');
    const sent = api.calls[0]!.request as gateway.GetSimilarItemsRequest;
    expect([sent.itemId, sent.k, sent.filter?.excludeCategories]).toEqual(['item 1', 3, ['x']]);

    api.failWith = new NotFoundError('item "nope" is not known');
    const missing = await call(base, '/v1/items/nope/similar', { key: WEB_KEY });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toEqual({ code: 'NOT_FOUND', message: 'item "nope" is not known' });
  });

  it('maps service errors to statuses and hides internals', async () => {
    api.failWith = new UnavailableError('ranking and the popular fallback are down');
    const unavailable = await post(base, '/v1/recommendations', { user_id: 'u1' });
    expect(unavailable.status).toBe(503);
    expect(unavailable.body.error.code).toBe('UNAVAILABLE');

    api.failWith = new ResourceExhaustedError('queue full');
    const shed = await post(base, '/v1/recommendations', { user_id: 'u1' });
    expect(shed.status).toBe(429);
    expect(shed.headers.get('retry-after')).toBe('1');

    api.failWith = new TypeError('cannot read x of undefined at /srv/secret/path.ts');
    const bug = await post(base, '/v1/recommendations', { user_id: 'u1' }, WEB_KEY, { 'x-request-id': 'bug-1' });
    expect(bug.status).toBe(500);
    expect(bug.body.error.code).toBe('INTERNAL');
    expect(JSON.stringify(bug.body)).not.toContain('secret');
    expect(bug.headers.get('x-request-id')).toBe('bug-1');
  });

  it('answers 404 in the same error shape for an unknown route', async () => {
    const res = await call(base, '/v2/nothing', { key: WEB_KEY });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });

  it('sends no CORS headers at all when no origin is configured', async () => {
    const res = await call(base, '/v1/recommendations?user_id=u1', { key: WEB_KEY, headers: { origin: 'https://shop.example' } });
    expect(res.status).toBe(200);
    expect([...res.headers.keys()].filter((h) => h.startsWith('access-control-'))).toEqual([]);
    const preflight = await call(base, '/v1/recommendations', {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('counts requests by route, method and code', async () => {
    await call(base, '/healthz');
    const text = await metrics.registry.getSingleMetricAsString('http_requests_total');
    expect(text).toContain('http_requests_total{route="/healthz",method="GET",code="200",service="gateway"}');
    expect(text).toContain('route="/v1/recommendations",method="POST",code="401"');
    expect(text).toContain('route="other",method="GET",code="404"');
  });
});

describe('REST API with CORS and a tight rate limit', () => {
  let server: RunningHttpServer;
  let base: string;
  let metrics: ServiceMetrics;
  let grpc: GrpcAccess;

  beforeAll(async () => {
    // A refill this slow never adds a token during the test: the burst is all a key gets.
    const config = gatewayConfig({
      CORS_ORIGINS: 'https://shop.example, https://admin.example',
      RATE_LIMIT_BURST: '3',
      RATE_LIMIT_PER_SECOND: '0.001',
    });
    metrics = new ServiceMetrics('gateway');
    grpc = GrpcAccess.fromConfig(config.access, metrics, logger);
    server = await startHttpServer(new RecordingApi(config), config, logger, metrics, grpc);
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(() => server.close());

  it('answers CORS for configured origins only, and preflights without a key', async () => {
    const allowed = await call(base, '/healthz', { headers: { origin: 'https://admin.example' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://admin.example');
    expect(allowed.headers.get('vary')).toMatch(/Origin/);
    expect(allowed.headers.get('access-control-expose-headers')).toContain('x-request-id');

    const other = await call(base, '/healthz', { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(other.headers.get('vary')).toMatch(/Origin/);

    const preflight = await call(base, '/v1/recommendations', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://shop.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    // A browser that traces may continue its trace through the gateway.
    expect(preflight.headers.get('access-control-allow-headers')).toContain('traceparent');
  });

  it('answers 429 with Retry-After once the burst is spent, per key, shared with gRPC', async () => {
    // One of the web key's three tokens goes through the gRPC transport: both share one bucket.
    const metadata = new Metadata();
    metadata.set('x-api-key', WEB_KEY);
    expect((await grpc.admit(metadata, '/recsys.gateway.v1.GatewayService/Recommend')).keyName).toBe('web');
    expect((await post(base, '/v1/recommendations', { user_id: 'u1' })).status).toBe(200);
    expect((await post(base, '/v1/recommendations', { user_id: 'u1' })).status).toBe(200);
    const limited = await post(base, '/v1/recommendations', { user_id: 'u1' });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.body.error.code).toBe('RESOURCE_EXHAUSTED');
    expect((await post(base, '/v1/recommendations', { user_id: 'u1' }, CLI_KEY)).status).toBe(200);
    expect((await call(base, '/healthz')).status).toBe(200);
    expect(await metrics.registry.getSingleMetricAsString('gateway_rate_limited_total')).toContain('key="web"');
  });
});

describe('REST API past saturation (admission control)', () => {
  let server: RunningHttpServer;
  let base: string;
  let metrics: ServiceMetrics;
  let api: RecordingApi;
  let admission: Admission;
  let releaseSlot: () => void;
  let held: Promise<void>;

  beforeAll(async () => {
    // A body deadline far longer than the test's own timeout: a request that waited for its body would fail the test.
    const config = gatewayConfig({ HTTP_REQUEST_TIMEOUT_MS: '600000' });
    metrics = new ServiceMetrics('gateway');
    api = new RecordingApi(config);
    // One slot, no queue: while the slot is held every API call is shed at once.
    admission = new Admission(
      { maxInFlight: 1, adaptive: false, minInFlight: 1, targetMs: 100, maxQueue: 0, queueTimeoutMs: 0, maxEventLoopLagMs: 0 },
      admissionMetrics(metrics),
    );
    held = admission.run(() => new Promise<void>((resolve) => (releaseSlot = resolve)));
    server = await startHttpServer(new AdmittedGatewayApi(api, admission), config, logger, metrics, undefined, admission);
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    releaseSlot();
    await held;
    await server.close();
  });

  // Regression (overload: shedding 400+ requests/s slowed the admitted ones): a shed request's body was read, parsed and
  // validated, and its call routed through Nest, before admission control refused it.
  it('sheds before the body is read: a malformed body gets 429, not 400, and a body that never comes is not waited for', async () => {
    const malformed = await call(base, '/v1/recommendations', { method: 'POST', body: '{"user_id": "u1",', key: WEB_KEY });
    expect(malformed.status).toBe(429);
    expect(malformed.headers.get('retry-after')).toBe('1');
    expect(malformed.headers.get('x-request-id')).toBeTruthy();
    expect(malformed.body.error.code).toBe('RESOURCE_EXHAUSTED');
    expect(malformed.body.error.message).toMatch(/overloaded/);

    const pending = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
      const req = httpRequest(`${base}/v1/feedback`, {
        method: 'POST',
        headers: { authorization: `Bearer ${WEB_KEY}`, 'content-type': 'application/json', 'content-length': '1000' },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => {
          resolve({ status: res.statusCode, body });
          req.destroy();
        });
      });
      req.on('error', reject);
      // Headers only: the promised 1000 bytes never come.
      req.flushHeaders();
    });
    expect(pending.status).toBe(429);
    expect(JSON.parse(pending.body)).toMatchObject({ error: { code: 'RESOURCE_EXHAUSTED' } });

    const similar = await call(base, '/v1/items/i1/similar', { key: WEB_KEY });
    expect(similar.status).toBe(429);
    expect(api.calls).toHaveLength(0);
    expect(await metrics.registry.getSingleMetricAsString('gateway_shed_total')).toMatch(/\{reason="queue_full"[^}]*\} 3/);
    expect(await metrics.registry.getSingleMetricAsString('http_requests_total')).toMatch(
      /route="\/v1\/recommendations",method="POST",code="429"[^}]*\} 1/,
    );
  });

  it('still refuses a missing key with 401 and answers the public routes and unknown ones as before', async () => {
    expect((await post(base, '/v1/recommendations', { user_id: 'u1' }, '')).status).toBe(401);
    expect((await call(base, '/healthz')).status).toBe(200);
    expect((await call(base, '/v1/nowhere', { key: WEB_KEY })).status).toBe(404);
    expect((await call(base, '/v1/feedback', { key: WEB_KEY })).status).toBe(404);
  });

  it('lets requests through again, body parsed, once a slot is free', async () => {
    releaseSlot();
    await held;
    const answered = await post(base, '/v1/recommendations', { user_id: 'u1', k: 2 });
    expect(answered.status).toBe(200);
    expect(answered.body.items).toHaveLength(2);
    expect(api.calls).toHaveLength(1);
    // Held again for afterAll.
    held = admission.run(() => new Promise<void>((resolve) => (releaseSlot = resolve)));
  });
});
