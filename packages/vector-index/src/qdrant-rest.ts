import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { VectorIndexArgumentError } from './errors.js';

/**
 * Time limits of the calls to Qdrant, per kind of operation (milliseconds). A search is short; a waited upsert of a
 * full batch, a collection created with its payload indexes, a deletion or waiting for the HNSW graph are not.
 */
export interface QdrantTimeouts {
  /** query, query/batch, retrieve (default 5 s: a backstop, the caller's own deadline is usually shorter). */
  search: number;
  /** Reading collections, aliases, the server version, counts (default 10 s). */
  read: number;
  /** One waited upsert request (default 60 s). */
  upsert: number;
  /** Creating or updating a collection, a payload index, the aliases (default 60 s). */
  write: number;
  /** Deleting a collection (default 120 s: a large one frees its segments first). */
  delete: number;
  /** Waiting for the new collection's HNSW graph before the alias moves to it (default 30 min). */
  indexing: number;
}

export const DEFAULT_QDRANT_TIMEOUTS: QdrantTimeouts = {
  search: 5_000,
  read: 10_000,
  upsert: 60_000,
  write: 60_000,
  delete: 120_000,
  indexing: 30 * 60_000,
};

export interface QdrantConnection {
  url: string;
  apiKey?: string;
  /** Per-operation time limits; unset ones take DEFAULT_QDRANT_TIMEOUTS. */
  timeouts?: Partial<QdrantTimeouts>;
  /** Attempts of a retried operation after the first (default 4): upserts and publish-time control calls. */
  retries?: number;
  /** First retry delay, doubled per attempt up to 10 s (default 250 ms); a 429's retry-after takes precedence. */
  retryBaseMs?: number;
}

/** Collection metadata (which marks complete versions) exists from Qdrant 1.16; the query API from 1.10. */
export const MIN_QDRANT_VERSION = '1.16.0';

/** A Qdrant request that failed: `status` is the HTTP status (0 for a timeout or a network error). */
export class QdrantRequestError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    message: string,
    /** From a 429's retry-after (header or body), in milliseconds. */
    readonly retryAfterMs?: number,
    readonly timedOut = false,
  ) {
    super(`Qdrant ${method} ${path}: ${message}`);
    this.name = 'QdrantRequestError';
  }

  /** Worth repeating for an idempotent request: a timeout, a dropped connection, 429 or a 5xx. */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

export type TimeoutKind = keyof QdrantTimeouts;

interface CallOptions {
  timeout: TimeoutKind;
  /** Repeat on a transient failure (only for idempotent requests). */
  retry?: boolean;
  /** Pre-serialised JSON body (upserts build theirs to a byte budget). */
  rawBody?: string;
}

function positive(field: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new VectorIndexArgumentError(field, `${value} is not a positive number of milliseconds`);
  return value;
}

/**
 * The REST calls the vector index makes to Qdrant: JSON over one keep-alive agent that close() destroys, a time limit
 * per kind of operation, and retries with backoff (honouring a 429's retry-after) for the idempotent ones (the
 * official JS client, used before, had one timeout for every call and an undici agent that was never closed).
 */
export class QdrantRest {
  readonly url: string;
  readonly timeouts: QdrantTimeouts;
  private readonly origin: URL;
  private readonly agent: HttpAgent;
  private readonly headers: Record<string, string>;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private serverVersion: Promise<string> | undefined;
  private closed = false;

  constructor(connection: QdrantConnection) {
    const { url, apiKey, timeouts = {}, retries = 4, retryBaseMs = 250 } = connection;
    let origin: URL;
    try {
      origin = new URL(url);
    } catch {
      throw new VectorIndexArgumentError('url', `"${url}" is not a URL`);
    }
    if (origin.protocol !== 'http:' && origin.protocol !== 'https:')
      throw new VectorIndexArgumentError('url', `"${url}" is not an http:// or https:// URL`);
    this.origin = origin;
    this.url = url;
    const merged = { ...DEFAULT_QDRANT_TIMEOUTS };
    for (const [key, value] of Object.entries(timeouts)) {
      if (!(key in DEFAULT_QDRANT_TIMEOUTS)) throw new VectorIndexArgumentError(`timeouts.${key}`, 'is not a Qdrant operation kind');
      if (value !== undefined) merged[key as TimeoutKind] = positive(`timeouts.${key}`, value);
    }
    this.timeouts = merged;
    if (!Number.isInteger(retries) || retries < 0)
      throw new VectorIndexArgumentError('retries', `${retries} is not a non-negative integer`);
    this.retries = retries;
    this.retryBaseMs = positive('retryBaseMs', retryBaseMs);
    this.agent =
      origin.protocol === 'https:'
        ? new HttpsAgent({ keepAlive: true, maxSockets: 16 })
        : new HttpAgent({ keepAlive: true, maxSockets: 16 });
    this.headers = { 'content-type': 'application/json', accept: 'application/json', ...(apiKey ? { 'api-key': apiKey } : {}) };
  }

  /** The server's version, checked once against MIN_QDRANT_VERSION (a clear error when older or unreachable). */
  checkServer(): Promise<string> {
    this.serverVersion ??= this.call<{ version?: unknown }>('GET', '/', undefined, { timeout: 'read', retry: true }, true).then(
      (root) => {
        const version = typeof root.version === 'string' ? root.version : undefined;
        if (version === undefined) throw new Error(`Qdrant at ${this.url}: GET / answered no version: is this a Qdrant server?`);
        if (compareSemver(version, MIN_QDRANT_VERSION) < 0)
          throw new Error(
            `Qdrant at ${this.url} is version ${version}; the vector index needs ${MIN_QDRANT_VERSION} or newer ` +
              '(collection metadata marks complete versions; the query API searches them)',
          );
        return version;
      },
      (error: unknown) => {
        this.serverVersion = undefined;
        if (error instanceof QdrantRequestError && (error.status === 401 || error.status === 403))
          throw new Error(`Qdrant at ${this.url} refused the API key (${error.status}): set apiKey / QDRANT_API_KEY`);
        throw new Error(`Qdrant at ${this.url} could not be reached: ${(error as Error).message}`);
      },
    );
    return this.serverVersion;
  }

  get<T>(path: string, timeout: TimeoutKind = 'read'): Promise<T> {
    return this.call<T>('GET', path, undefined, { timeout, retry: true });
  }

  call<T>(method: string, path: string, body: unknown, options: CallOptions, root = false): Promise<T> {
    return this.withRetries(options, () => this.once<T>(method, path, body, options, root));
  }

  private async withRetries<T>(options: CallOptions, attempt: () => Promise<T>): Promise<T> {
    for (let tried = 0; ; tried++) {
      try {
        return await attempt();
      } catch (error) {
        if (!options.retry || !(error instanceof QdrantRequestError) || !error.transient || tried >= this.retries || this.closed)
          throw error;
        const backoff = Math.min(10_000, this.retryBaseMs * 2 ** tried);
        await sleep(error.retryAfterMs ?? backoff);
      }
    }
  }

  private once<T>(method: string, path: string, body: unknown, options: CallOptions, root: boolean): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`Qdrant client for ${this.url} is closed`));
    const payload = options.rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
    const target = new URL(path, this.origin);
    const limit = this.timeouts[options.timeout];
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const fail = (error: QdrantRequestError) => {
        if (settled) return;
        settled = true;
        reject(error);
      };
      const req = send(
        target,
        {
          method,
          agent: this.agent,
          headers: { ...this.headers, ...(payload !== undefined ? { 'content-length': Buffer.byteLength(payload) } : {}) },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error) => fail(new QdrantRequestError(method, path, 0, error.message)));
          res.on('end', () => {
            if (settled) return;
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: { result?: unknown; status?: unknown } | undefined;
            try {
              parsed = text.length > 0 ? (JSON.parse(text) as typeof parsed) : undefined;
            } catch {
              parsed = undefined;
            }
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) {
              const reason =
                typeof parsed?.status === 'object' && parsed.status !== null && 'error' in parsed.status
                  ? String((parsed.status as { error: unknown }).error)
                  : text.slice(0, 300) || res.statusMessage || '';
              fail(
                new QdrantRequestError(
                  method,
                  path,
                  status,
                  `${status} ${reason}`.trim(),
                  status === 429 ? retryAfter(res, parsed) : undefined,
                ),
              );
              return;
            }
            if (parsed === undefined) {
              fail(new QdrantRequestError(method, path, status, `answered ${status} with a body that is not JSON`));
              return;
            }
            settled = true;
            resolve((root ? parsed : parsed.result) as T);
          });
        },
      );
      const timer = setTimeout(() => {
        fail(new QdrantRequestError(method, path, 0, `no answer within ${limit} ms (timeouts.${options.timeout})`, undefined, true));
        req.destroy();
      }, limit);
      req.on('error', (error) => {
        clearTimeout(timer);
        fail(new QdrantRequestError(method, path, 0, error.message));
      });
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** Releases the connections; requests after it fail. */
  close(): void {
    this.closed = true;
    this.agent.destroy();
  }
}

function retryAfter(res: IncomingMessage, parsed: { status?: unknown } | undefined): number | undefined {
  const header = Number(res.headers['retry-after']);
  if (Number.isFinite(header) && header >= 0) return header * 1000;
  const fromBody = /retry after (\d+(?:\.\d+)?)\s*s/i.exec(JSON.stringify(parsed?.status ?? ''));
  return fromBody ? Number(fromBody[1]) * 1000 : undefined;
}

/** Compares dotted version numbers ("1.16.2" < "1.17.0"); a pre-release suffix is ignored. */
export function compareSemver(a: string, b: string): number {
  const parts = (v: string) =>
    v
      .replace(/^v/, '')
      .split(/[-+]/)[0]!
      .split('.')
      .map((p) => Number(p) || 0);
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
