/**
 * TEST DOUBLE of a Qdrant server — NOT Qdrant, and never the Qdrant path. It answers, over real HTTP on a loopback
 * port, exactly the REST endpoints the adapter (qdrant-rest.ts / qdrant-store.ts) calls, with the semantics the adapter
 * relies on (collection metadata merged on PATCH, aliases switched atomically, waited upserts, named vectors, filters,
 * prefetch + re-scoring), so that the publish/serve control logic can be tested on a machine without a Qdrant server,
 * with faults injected: timeouts (held answers), 429 with retry-after, 5xx, and slow indexing. Searches are exact
 * (brute force): recall against a real HNSW graph is measured only by the real-server suite (QDRANT_URL).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';

export interface DoubleFault {
  method?: string;
  /** Matched against the path (query string included). */
  path?: RegExp;
  /** Answer with this status instead (429 carries `retry-after: retryAfterS`). */
  status?: number;
  retryAfterS?: number;
  /** Hold the answer this long (a shorter client timeout sees a timeout). */
  delayMs?: number;
  /** Carry out the request before the fault (the write happens, its answer is lost or an error). */
  applyFirst?: boolean;
  /** How many matching requests it hits (default 1). */
  times?: number;
}

interface VectorParams {
  size: number;
  distance: 'Dot' | 'Cosine' | 'Euclid';
}

interface DoublePoint {
  vector: Record<string, number[]>;
  payload: Record<string, unknown>;
}

export interface DoubleCollection {
  vectors: Record<string, VectorParams & { hnsw_config?: object }>;
  hnswConfig: object | undefined;
  indexingThresholdKb: number;
  /** When indexing was last switched on (the double reports yellow for `indexingMs` after it). */
  indexingSince: number | undefined;
  metadata: Record<string, unknown>;
  points: Map<string, DoublePoint>;
  payloadSchema: Record<string, { data_type: string }>;
}

export interface DoubleRequest {
  method: string;
  path: string;
  bytes: number;
  status: number;
  /** The body, when under 64 KiB. */
  body?: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A small in-process stand-in for Qdrant's REST API (see the file comment: a test double). */
export class QdrantHttpDouble {
  readonly collections = new Map<string, DoubleCollection>();
  readonly aliases = new Map<string, string>();
  readonly requests: DoubleRequest[] = [];
  /** GET / reports this version. */
  version = '1.19.0';
  /** How long "building the HNSW graph" takes once indexing is switched on. */
  indexingMs = 0;
  /** Qdrant's default request body limit. */
  maxBodyBytes = 32 * 1024 * 1024;
  private readonly faults: DoubleFault[] = [];
  private server!: Server;
  url = '';

  static async start(): Promise<QdrantHttpDouble> {
    const double = new QdrantHttpDouble();
    double.server = createServer((req, res) => void double.handle(req, res));
    await new Promise<void>((resolve) => double.server.listen(0, '127.0.0.1', resolve));
    double.url = `http://127.0.0.1:${(double.server.address() as AddressInfo).port}`;
    return double;
  }

  fault(fault: DoubleFault): void {
    this.faults.push({ times: 1, ...fault });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private takeFault(method: string, path: string): DoubleFault | undefined {
    const fault = this.faults.find(
      (f) => (f.method === undefined || f.method === method) && (f.path === undefined || f.path.test(path)) && (f.times ?? 1) > 0,
    );
    if (fault) fault.times = (fault.times ?? 1) - 1;
    return fault;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const record: DoubleRequest = {
      method,
      path,
      bytes: raw.length,
      status: 0,
      ...(raw.length < 65536 ? { body: raw.toString('utf8') } : {}),
    };
    this.requests.push(record);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const fault = this.takeFault(method, path);
    const run = () => {
      try {
        if (raw.length > this.maxBodyBytes) throw new HttpError(413, `Payload too large: ${raw.length} bytes > ${this.maxBodyBytes}`);
        const body = raw.length > 0 ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : {};
        const result = this.route(method, new URL(path, 'http://double'), body);
        return { status: 200, body: path === '/' ? result : { result, status: 'ok', time: 0 } };
      } catch (error) {
        const status = error instanceof HttpError ? error.status : 400;
        return { status, body: { status: { error: (error as Error).message }, time: 0 } };
      }
    };
    if (!fault) {
      const answer = run();
      send(answer.status, answer.body);
      return;
    }
    let answer = fault.applyFirst ? run() : undefined;
    if (fault.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    if (fault.status) {
      send(
        fault.status,
        { status: { error: `injected fault ${fault.status}` }, time: 0 },
        fault.status === 429 && fault.retryAfterS !== undefined ? { 'retry-after': String(fault.retryAfterS) } : {},
      );
      return;
    }
    answer ??= run();
    send(answer.status, answer.body);
  }

  private collection(name: string): DoubleCollection {
    const found = this.collections.get(this.aliases.get(name) ?? name);
    if (!found) throw new HttpError(404, `Not found: Collection \`${name}\` doesn't exist!`);
    return found;
  }

  /** Status and indexed count as Qdrant reports them: yellow while the graph builds, indexed once built above the threshold. */
  private indexState(c: DoubleCollection): { status: string; indexed: number } {
    if (c.indexingThresholdKb === 0) return { status: 'green', indexed: 0 };
    const elapsed = Date.now() - (c.indexingSince ?? 0);
    const graphVectors = Object.values(c.vectors).filter((v) => (v.hnsw_config as { m?: number } | undefined)?.m !== 0);
    const bytes = c.points.size * graphVectors.reduce((sum, v) => sum + v.size * 4, 0);
    const wanted = bytes > c.indexingThresholdKb * 1024 ? c.points.size : 0;
    if (elapsed < this.indexingMs) return { status: 'yellow', indexed: Math.floor((wanted * elapsed) / this.indexingMs) };
    return { status: 'green', indexed: wanted };
  }

  private route(method: string, url: URL, body: Record<string, unknown>): unknown {
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const key = `${method} /${parts.map((p, i) => (i === 1 && parts[0] === 'collections' && p !== 'aliases' ? ':name' : p)).join('/')}`;
    const name = parts[1] ?? '';
    switch (key) {
      case 'GET /':
        return { title: 'qdrant http double (test double, not Qdrant)', version: this.version };
      case 'GET /collections':
        return { collections: [...this.collections.keys()].map((n) => ({ name: n })) };
      case 'GET /aliases':
        return { aliases: [...this.aliases].map(([alias_name, collection_name]) => ({ alias_name, collection_name })) };
      case 'POST /collections/aliases': {
        const next = new Map(this.aliases);
        for (const action of body.actions as Record<string, { alias_name: string; collection_name?: string }>[]) {
          if (action.delete_alias) next.delete(action.delete_alias.alias_name);
          else if (action.create_alias) {
            const { alias_name, collection_name } = action.create_alias;
            if (!this.collections.has(collection_name!)) throw new HttpError(404, `Collection \`${collection_name}\` doesn't exist!`);
            if (this.collections.has(alias_name)) throw new HttpError(400, `Collection \`${alias_name}\` already exists!`);
            next.set(alias_name, collection_name!);
          } else throw new HttpError(400, 'unknown alias action');
        }
        this.aliases.clear();
        for (const [a, c] of next) this.aliases.set(a, c);
        return true;
      }
      case 'GET /collections/:name': {
        const c = this.collection(name);
        const { status, indexed } = this.indexState(c);
        return {
          status,
          optimizer_status: 'ok',
          points_count: c.points.size,
          indexed_vectors_count: indexed,
          segments_count: 1,
          config: {
            params: { vectors: c.vectors },
            hnsw_config: c.hnswConfig ?? {},
            optimizer_config: { indexing_threshold: c.indexingThresholdKb },
            metadata: c.metadata,
          },
          payload_schema: c.payloadSchema,
        };
      }
      case 'PUT /collections/:name': {
        if (this.collections.has(name) || this.aliases.has(name))
          throw new HttpError(409, `Wrong input: Collection \`${name}\` already exists!`);
        const vectors = body.vectors as DoubleCollection['vectors'];
        const optimizers = body.optimizers_config as { indexing_threshold?: number } | undefined;
        this.collections.set(name, {
          vectors,
          hnswConfig: body.hnsw_config as object | undefined,
          indexingThresholdKb: optimizers?.indexing_threshold ?? 20_000,
          indexingSince: Date.now(),
          metadata: { ...((body.metadata as object | undefined) ?? {}) },
          points: new Map(),
          payloadSchema: {},
        });
        return true;
      }
      case 'PATCH /collections/:name': {
        const c = this.collection(name);
        for (const [k, v] of Object.entries((body.metadata as Record<string, unknown> | undefined) ?? {}))
          if (v === null) delete c.metadata[k];
          else c.metadata[k] = v;
        const threshold = (body.optimizers_config as { indexing_threshold?: number } | undefined)?.indexing_threshold;
        if (threshold !== undefined && threshold !== c.indexingThresholdKb) {
          c.indexingThresholdKb = threshold;
          c.indexingSince = Date.now();
        }
        return true;
      }
      case 'DELETE /collections/:name': {
        const existed = this.collections.delete(name);
        for (const [a, c] of this.aliases) if (c === name) this.aliases.delete(a);
        return existed;
      }
      case 'PUT /collections/:name/index': {
        const c = this.collection(name);
        c.payloadSchema[body.field_name as string] = { data_type: body.field_schema as string };
        return { operation_id: 0, status: 'completed' };
      }
      case 'PUT /collections/:name/points': {
        const c = this.collection(name);
        for (const point of body.points as { id: string; vector: Record<string, number[]>; payload?: Record<string, unknown> }[]) {
          const vector: Record<string, number[]> = {};
          for (const [vname, params] of Object.entries(c.vectors)) {
            const v = point.vector?.[vname];
            if (!Array.isArray(v) || v.length !== params.size)
              throw new HttpError(
                400,
                `Wrong input: Vector dimension error: expected dim: ${params.size}, got ${Array.isArray(v) ? v.length : 'none'} (${vname})`,
              );
            vector[vname] = params.distance === 'Cosine' ? normalise(v) : v.map(Math.fround);
          }
          c.points.set(point.id, { vector, payload: point.payload ?? {} });
        }
        return { operation_id: 0, status: 'completed' };
      }
      case 'POST /collections/:name/points/count': {
        const c = this.collection(name);
        return { count: [...c.points].filter(([id, p]) => passes(body.filter, id, p)).length };
      }
      case 'POST /collections/:name/points': {
        const c = this.collection(name);
        return (body.ids as string[]).flatMap((id) => {
          const p = c.points.get(id);
          return p ? [{ id, payload: select(p.payload, body.with_payload), vector: selectVector(p.vector, body.with_vector) }] : [];
        });
      }
      case 'POST /collections/:name/points/query':
        return { points: this.query(this.collection(name), body) };
      case 'POST /collections/:name/points/query/batch': {
        const c = this.collection(name);
        return (body.searches as Record<string, unknown>[]).map((search) => ({ points: this.query(c, search) }));
      }
      default:
        throw new HttpError(404, `the test double does not implement ${method} ${url.pathname}`);
    }
  }

  private query(c: DoubleCollection, request: Record<string, unknown>): { id: string; score: number; payload: unknown }[] {
    let candidates = [...c.points.keys()];
    if (request.prefetch) {
      const prefetch = request.prefetch as Record<string, unknown>;
      candidates = this.rank(c, candidates, prefetch).map((m) => m.id);
    }
    return this.rank(c, candidates, request).map(({ id, score }) => ({
      id,
      score,
      payload: select(c.points.get(id)!.payload, request.with_payload),
    }));
  }

  /** The best `limit` of `ids` for the request's query on its `using` vector, after its filter (exact). */
  private rank(c: DoubleCollection, ids: string[], request: Record<string, unknown>): { id: string; score: number }[] {
    const using = (request.using as string | undefined) ?? '';
    const params = c.vectors[using];
    if (!params) throw new HttpError(400, `Wrong input: Not existing vector name error: ${using}`);
    const query = request.query as number[];
    if (!Array.isArray(query) || query.length !== params.size)
      throw new HttpError(
        400,
        `Wrong input: Vector dimension error: expected dim: ${params.size}, got ${Array.isArray(query) ? query.length : 'none'}`,
      );
    const q = params.distance === 'Cosine' ? normalise(query) : query;
    const scored = ids
      .filter((id) => passes(request.filter, id, c.points.get(id)!))
      .map((id) => {
        const v = c.points.get(id)!.vector[using]!;
        let s = 0;
        if (params.distance === 'Euclid') {
          for (let i = 0; i < v.length; i++) s += (v[i]! - q[i]!) ** 2;
          s = Math.sqrt(s);
        } else for (let i = 0; i < v.length; i++) s += v[i]! * q[i]!;
        return { id, score: Math.fround(s) };
      });
    scored.sort((a, b) => (params.distance === 'Euclid' ? a.score - b.score : b.score - a.score));
    return scored.slice(0, (request.limit as number | undefined) ?? 10);
  }
}

function normalise(v: number[]): number[] {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => Math.fround(n > 0 ? x / n : 0));
}

type Condition = { key?: string; match?: { any?: unknown[]; value?: unknown }; has_id?: string[] };

function holds(condition: Condition, id: string, point: DoublePoint): boolean {
  if (condition.has_id) return condition.has_id.includes(id);
  const value = point.payload[condition.key ?? ''];
  if (condition.match?.any) return condition.match.any.includes(value);
  if (condition.match && 'value' in condition.match) return condition.match.value === value;
  throw new HttpError(400, `the test double does not implement the condition ${JSON.stringify(condition)}`);
}

function passes(filter: unknown, id: string, point: DoublePoint): boolean {
  if (!filter) return true;
  const { must = [], must_not = [] } = filter as { must?: Condition[]; must_not?: Condition[] };
  return must.every((c) => holds(c, id, point)) && !must_not.some((c) => holds(c, id, point));
}

function select(payload: Record<string, unknown>, withPayload: unknown): Record<string, unknown> | null {
  if (withPayload === true) return payload;
  if (!Array.isArray(withPayload)) return null;
  return Object.fromEntries(Object.entries(payload).filter(([k]) => (withPayload as string[]).includes(k)));
}

function selectVector(vector: Record<string, number[]>, withVector: unknown): Record<string, number[]> | null {
  if (withVector === true) return vector;
  if (!Array.isArray(withVector)) return null;
  return Object.fromEntries(Object.entries(vector).filter(([k]) => (withVector as string[]).includes(k)));
}
