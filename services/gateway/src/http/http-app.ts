import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Body,
  Catch,
  Controller,
  Get,
  HttpCode,
  HttpException,
  Inject,
  Injectable,
  Module,
  Param,
  Post,
  Query,
  Res,
  UseInterceptors,
  type ArgumentsHost,
  type CallHandler,
  type DynamicModule,
  type ExceptionFilter,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { gateway } from '@recsys/contracts';
import {
  NestPinoLogger,
  REQUEST_ID_HEADER,
  runWithRequestContext,
  startServerSpan,
  type CallSpan,
  type Logger,
  type ServiceMetrics,
} from '@recsys/service-kit';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { Observable } from 'rxjs';
import type { Admission } from '../admission.js';
import type { GatewayConfig } from '../config.js';
import type { Caller, GatewayApi } from '../gateway-api.js';
import { AccessControl } from './access-control.js';
import { presentedKey } from './api-keys.js';
import { GrpcAccess } from './grpc-access.js';
import { HttpStatusError, httpErrorOf } from './errors.js';
import { openApiDocument } from './openapi.js';
import {
  feedbackRequestFromBody,
  recommendRequestFromBody,
  recommendRequestFromQuery,
  responseJson,
  similarRequestFromQuery,
} from './rest-schemas.js';

/** What the middleware learns about a request, for the handler and the metrics. */
interface RequestLocals {
  requestId: string;
  route: string;
  /** When the request arrived (epoch ms, before its body): the request's budget counts from it. */
  receivedMs: number;
  caller?: Caller;
  /** The request's span while tracing is on. */
  span?: CallSpan;
}

const localsOf = (res: Response) => res.locals as RequestLocals;

/** Same rule as service-kit's requestIdFrom for gRPC metadata: ids travel into logs and downstream metadata. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Routes as metric labels: a fixed set, so an attacker's URLs cannot grow the label space. */
const ROUTES: ReadonlyArray<[pattern: RegExp, route: string]> = [
  [/^\/v1\/recommendations\/?$/, '/v1/recommendations'],
  [/^\/v1\/feedback\/?$/, '/v1/feedback'],
  [/^\/v1\/items\/[^/]+\/similar\/?$/, '/v1/items/:id/similar'],
  [/^\/healthz\/?$/, '/healthz'],
  [/^\/openapi\.json$/, '/openapi.json'],
];
const routeOf = (path: string) => ROUTES.find(([pattern]) => pattern.test(path))?.[1] ?? 'other';
const PUBLIC_ROUTES = new Set(['/healthz', '/openapi.json']);
/** The calls admission control stands in front of (the handlers that call the gateway API), as `METHOD route`. */
const ADMITTED_CALLS = new Set(['POST /v1/recommendations', 'GET /v1/recommendations', 'POST /v1/feedback', 'GET /v1/items/:id/similar']);

const HTTP_DEPS = Symbol('HTTP_DEPS');

interface HttpDeps {
  api: GatewayApi;
  config: GatewayConfig;
  logger: Logger;
  openapi: Record<string, unknown>;
}

function sendError(res: Response, error: unknown, logger: Logger): void {
  const answer = httpErrorOf(error);
  const { requestId, route } = localsOf(res);
  const fields = { requestId, route, status: answer.status, code: answer.code };
  if (answer.status >= 500 && answer.status !== 503) logger.error({ ...fields, err: error }, 'http request failed');
  else if (answer.status === 503) logger.warn({ ...fields, err: error }, 'http request failed: dependency unavailable');
  else logger.debug({ ...fields, message: answer.message }, 'http request refused');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(answer.status).set(answer.headers);
  res.json({ error: { code: answer.code, ...(answer.field !== undefined ? { field: answer.field } : {}), message: answer.message } });
}

/** Every error a handler throws becomes the JSON error body; internals are logged, never answered. */
@Catch()
class HttpErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    // Nest's own exceptions (no route matched) keep their status; a path id that is not valid percent-encoding is the
    // request's item_id (the only path parameter).
    const error =
      exception instanceof HttpException
        ? exception.getStatus() === 400 && exception.message.startsWith('Failed to decode param')
          ? new HttpStatusError(400, 'item_id: the path segment is not valid percent-encoding', 'item_id')
          : new HttpStatusError(exception.getStatus(), exception.message)
        : exception;
    sendError(res, error, this.logger);
  }
}

/** Runs the handler inside the request context, so logs and downstream gRPC calls carry the request id. */
@Injectable()
class RequestContextInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<Request>();
    const { requestId, route, receivedMs, span } = localsOf(context.switchToHttp().getResponse<Response>());
    const requestContext = { requestId, deadlineMs: Infinity, receivedMs, method: `${req.method} ${route}`, span };
    // The handler runs on subscription: subscribing inside the context covers everything it awaits.
    return new Observable((subscriber) => runWithRequestContext(requestContext, () => next.handle().subscribe(subscriber)));
  }
}

function callerOf(res: Response): Caller {
  const { caller } = localsOf(res);
  // The access middleware admits every non-public route first; reaching a handler without a caller is a wiring bug.
  if (!caller) throw new Error('request reached a handler without passing access control');
  return caller;
}

@Controller()
@UseInterceptors(RequestContextInterceptor)
class GatewayHttpController {
  constructor(@Inject(HTTP_DEPS) private readonly deps: HttpDeps) {}

  @Post('v1/recommendations')
  @HttpCode(200)
  async recommendPost(@Body() body: unknown, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    const answer = await this.deps.api.recommend(recommendRequestFromBody(body), callerOf(res));
    return responseJson(gateway.RecommendResponseSchema, answer);
  }

  @Get('v1/recommendations')
  async recommendGet(@Query() query: unknown, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    const answer = await this.deps.api.recommend(recommendRequestFromQuery(query), callerOf(res));
    return responseJson(gateway.RecommendResponseSchema, answer);
  }

  @Post('v1/feedback')
  @HttpCode(200)
  async feedback(@Body() body: unknown, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    const answer = await this.deps.api.sendFeedback(feedbackRequestFromBody(body), callerOf(res));
    return responseJson(gateway.SendFeedbackResponseSchema, answer);
  }

  @Get('v1/items/:id/similar')
  async similar(@Param('id') id: string, @Query() query: unknown, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    const answer = await this.deps.api.similarItems(similarRequestFromQuery(id, query), callerOf(res));
    return responseJson(gateway.GetSimilarItemsResponseSchema, answer);
  }

  @Get('healthz')
  health(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('openapi.json')
  openapi(): Record<string, unknown> {
    return this.deps.openapi;
  }
}

@Module({})
class GatewayHttpModule {
  static register(deps: HttpDeps): DynamicModule {
    return { module: GatewayHttpModule, controllers: [GatewayHttpController], providers: [{ provide: HTTP_DEPS, useValue: deps }] };
  }
}

type Counter = ReturnType<ServiceMetrics['counter']>;
type Histogram = ReturnType<ServiceMetrics['histogram']>;

/** Created once per registry: a second server on the same registry (tests) reuses them. */
function httpMetrics(metrics: ServiceMetrics): { requests: Counter; duration: Histogram } {
  const { registry } = metrics;
  return {
    requests:
      (registry.getSingleMetric('http_requests_total') as Counter | undefined) ??
      metrics.counter('http_requests_total', 'HTTP requests answered, by route, method and status code', ['route', 'method', 'code']),
    duration:
      (registry.getSingleMetric('http_request_duration_seconds') as Histogram | undefined) ??
      metrics.histogram(
        'http_request_duration_seconds',
        'HTTP request handling time by route',
        ['route'],
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      ),
  };
}

/** Request id, route label and metrics for every request, answered or refused. */
function observe(metrics: ServiceMetrics): RequestHandler {
  const { requests, duration } = httpMetrics(metrics);
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const receivedMs = Date.now();
    const sent = req.get(REQUEST_ID_HEADER);
    const requestId = sent !== undefined && REQUEST_ID.test(sent) ? sent : randomUUID();
    const route = routeOf(req.path);
    const span = startServerSpan(`${req.method} ${route}`, req, requestId, { method: req.method, route });
    res.locals = Object.assign(res.locals, { requestId, route, receivedMs, span } satisfies RequestLocals);
    res.set(REQUEST_ID_HEADER, requestId);
    // Server-Timing (W3C): the gateway's own time for this answer, from reading the request to writing the headers, so a
    // client can tell the time spent here from the network's and its own (browsers' developer tools show it).
    const writeHead = res.writeHead;
    res.writeHead = function (this: Response, ...args: Parameters<Response['writeHead']>) {
      this.setHeader('server-timing', `total;dur=${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(1)}`);
      return writeHead.apply(this, args);
    } as Response['writeHead'];
    res.on('finish', () => {
      requests.inc({ route, method: req.method, code: String(res.statusCode) });
      duration.observe({ route }, Number(process.hrtime.bigint() - started) / 1e9);
    });
    // 'close' also comes when the client went away before the answer: the span ends either way.
    if (span) res.once('close', () => span.endHttp(res.writableFinished ? res.statusCode : 499));
    next();
  };
}

/** CORS for the configured origins only; preflights are answered here, before authentication (browsers send no key on them). */
function cors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.get('origin');
    res.vary('Origin');
    const permitted = origin !== undefined && allowed.has(origin);
    if (permitted) {
      res.set('Access-Control-Allow-Origin', origin);
      res.set('Access-Control-Expose-Headers', 'x-request-id, retry-after, www-authenticate, server-timing');
    }
    if (req.method === 'OPTIONS' && req.get('access-control-request-method') !== undefined) {
      if (permitted) {
        res.set('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
        res.set('Access-Control-Allow-Headers', 'authorization, x-api-key, content-type, x-request-id, traceparent, tracestate');
        res.set('Access-Control-Max-Age', '600');
      }
      res.status(204).end();
      return;
    }
    next();
  };
}

function admit(access: AccessControl, logger: Logger): RequestHandler {
  return (req, res, next) => {
    const locals = localsOf(res);
    if (PUBLIC_ROUTES.has(locals.route) && req.method === 'GET') return next();
    access
      .admit(presentedKey(req.get('authorization'), req.get('x-api-key')), `${req.method} ${locals.route}`)
      .then(
        (keyName) => {
          locals.caller = { requestId: locals.requestId, keyName };
          next();
        },
        (error: unknown) => sendError(res, error, logger),
      )
      .catch((error: unknown) => logger.error({ err: error, requestId: locals.requestId }, 'http request failed after admission'));
  };
}

/**
 * Past saturation most requests are shed, and each shed request's work slows the admitted ones on this one event loop:
 * one that admission control would shed at once is answered here, before its body is read or parsed, before Nest's
 * routing, interceptors and handler (pnpm bench:shed measures the CPU each costs). After access control, so that a
 * missing key is still 401 and a key over its rate limit still gets its own 429. A request let through is decided
 * again by the API's admission (a slot, a queue place, or shed) once its body arrived.
 */
function shedEarly(admission: Admission, logger: Logger): RequestHandler {
  return (req, res, next) => {
    const error = ADMITTED_CALLS.has(`${req.method} ${localsOf(res).route}`) ? admission.shedEarly() : undefined;
    if (error === undefined) return next();
    sendError(res, error, logger);
  };
}

/**
 * A body still arriving after timeoutMs (a slow-loris client: a byte now and then) is answered 408 and its connection
 * closed. Node's own requestTimeout is only checked every 30 s and its default is 5 minutes.
 */
function bodyDeadline(timeoutMs: number, logger: Logger): RequestHandler {
  return (req, res, next) => {
    if (req.complete) return next();
    const timer = setTimeout(() => {
      if (req.complete || res.headersSent) return;
      res.set('Connection', 'close');
      res.once('finish', () => req.destroy());
      sendError(res, new HttpStatusError(408, `the request did not arrive within ${timeoutMs} ms`, 'body'), logger);
    }, timeoutMs);
    const clear = () => clearTimeout(timer);
    req.once('end', clear);
    res.once('close', clear);
    next();
  };
}

/** JSON bodies up to maxBodyBytes; the body parser's own errors become clear JSON answers (413, 400, 415). */
function jsonBody(maxBodyBytes: number, logger: Logger): RequestHandler {
  const parse = express.json({ limit: maxBodyBytes, type: 'application/json', strict: true });
  return (req: Request, res: Response, next: NextFunction) => {
    // A body that is not JSON would otherwise reach the handler as "missing".
    if (req.is('application/json') === false) {
      sendError(res, new HttpStatusError(415, 'the body must be JSON: send Content-Type: application/json', 'content-type'), logger);
      return;
    }
    parse(req, res, (error?: unknown) => {
      if (error === undefined || error === null) return next();
      const { type, status } = error as { type?: string; status?: number };
      // Every refusal names what it is about: the body, or the header that describes it.
      const field = type === 'charset.unsupported' ? 'content-type' : type === 'encoding.unsupported' ? 'content-encoding' : 'body';
      const httpError =
        type === 'entity.too.large'
          ? new HttpStatusError(413, `the body is larger than the limit of ${maxBodyBytes} bytes`, field)
          : type === 'entity.parse.failed'
            ? new HttpStatusError(400, `the body is not valid JSON: ${(error as Error).message}`, field)
            : new HttpStatusError(
                typeof status === 'number' && status >= 400 && status < 500 ? status : 400,
                (error as Error).message,
                field,
              );
      sendError(res, httpError, logger);
    });
  };
}

export interface RunningHttpServer {
  port: number;
  close(): Promise<void>;
}

/**
 * The REST API over `api`, on config.httpHost:httpPort (0 picks a free port). Pass the GrpcAccess (or AccessControl)
 * the gRPC transport uses so one API key has one rate-limit budget across both; without it, one is made from config.access.
 */
export async function startHttpServer(
  api: GatewayApi,
  config: GatewayConfig,
  logger: Logger,
  metrics: ServiceMetrics,
  shared?: AccessControl | GrpcAccess,
  /** The admission control `api` runs behind (AdmittedGatewayApi's): requests it would shed at once are shed before their body is read. */
  admission?: Admission,
): Promise<RunningHttpServer> {
  const access = shared instanceof GrpcAccess ? shared.control : (shared ?? AccessControl.fromConfig(config.access, metrics, logger));
  if (config.httpPort < 0) throw new Error('the REST API is turned off (HTTP_PORT=-1): do not start it');
  const httpLogger = logger.child({ component: 'http' });
  const deps: HttpDeps = { api, config, logger: httpLogger, openapi: openApiDocument(config) };
  const app = await NestFactory.create<NestExpressApplication>(GatewayHttpModule.register(deps), new ExpressAdapter(), {
    bodyParser: false,
    logger: new NestPinoLogger(httpLogger.child({ component: 'nest' })),
  });
  app.disable('x-powered-by');
  app.use(observe(metrics));
  if (config.access.corsOrigins.length > 0) app.use(cors(config.access.corsOrigins));
  app.use(admit(access, httpLogger));
  if (admission?.enabled) app.use(shedEarly(admission, httpLogger));
  app.use(bodyDeadline(config.httpRequestTimeoutMs, httpLogger));
  app.use(jsonBody(config.access.maxBodyBytes, httpLogger));
  app.useGlobalFilters(new HttpErrorFilter(httpLogger));
  try {
    await app.listen(config.httpPort, config.httpHost);
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
  const server = app.getHttpServer() as Server;
  // Node's defaults let a client take 5 minutes over one request (slow loris); bodyDeadline answers bodies in time,
  // these bound the headers too (checked by Node every 30 s).
  server.requestTimeout = config.httpRequestTimeoutMs;
  server.headersTimeout = Math.min(server.headersTimeout, config.httpRequestTimeoutMs);
  const port = (server.address() as AddressInfo).port;
  httpLogger.info({ port, host: config.httpHost, cors: config.access.corsOrigins }, 'REST API listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Requests in flight finish unless they outlast the shutdown timeout; idle keep-alive connections close at once.
      const timer = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
      server.closeIdleConnections();
      try {
        await app.close();
      } finally {
        clearTimeout(timer);
        // An access control made here (none shared) is this server's to close.
        if (shared === undefined) await access.close();
      }
      httpLogger.info('REST API stopped');
    })());
  return { port, close };
}
