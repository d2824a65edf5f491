// Hostile and malformed input against a running pipeline: the gateway's REST API (random and structured bodies, query
// strings, paths, headers, content types, truncated and slow-loris bodies) and every RPC of every service over gRPC
// (enumerated from the generated descriptors: random bytes, truncated messages and frames, unknown fields, wrong wire
// types, random well-typed messages with hostile values, oversized messages). Each answer is judged: no 5xx (HTTP
// status >= 500; gRPC INTERNAL, UNKNOWN, DATA_LOSS), every 400 / INVALID_ARGUMENT names the field, every process
// still alive and healthy, RSS growth over the run (when pids are given).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { create, toBinary, ScalarType, type DescField, type DescMessage, type DescService } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { features, gateway, preranking, ranking, reranking, retrieval } from '@recsys/contracts';
import { checkHealth } from '@recsys/service-kit';

export interface FuzzOptions {
  /** The gateway's REST base URL (http://host:port). */
  gatewayRest: string;
  /** The gateway's gRPC host:port. */
  gatewayGrpc: string;
  /** gRPC host:port of each other service by name (features, retrieval, preranking, ranking, reranking). */
  stageAddresses: Record<string, string>;
  /** short: a few hundred cases in seconds (CI); full: thousands, oversized messages and slow-loris bodies. */
  cases?: 'short' | 'full';
  /** Process id per service: liveness and RSS before and after. */
  pids?: Record<string, number>;
  /** The API key the gateway accepts (else RECSYS_API_KEY); without one only the refusals of access are exercised. */
  apiKey?: string;
  /** Seed of the case generator (same seed, same cases). */
  seed?: number;
}

export interface FuzzResult {
  fuzz_cases: number;
  fuzz_5xx: number;
  /** grpc-js's own INTERNAL answers to malformed transport input (see TRANSPORT_INTERNAL); not in fuzz_5xx. */
  transport_internal: number;
  crashes: number;
  rss_growth_pct?: number;
  findings: string[];
  /** Cases per target (rest, grpc:<service>). */
  by_target: Record<string, number>;
  /** Answers by status (HTTP status or gRPC code name). */
  by_status: Record<string, number>;
  /** RSS in MiB before and after the run, per process (when pids are given). */
  rss_mib?: Record<string, [before: number, after: number]>;
}

/** gRPC codes that mean the server failed, the equivalent of HTTP 5xx (UNAVAILABLE is judged by liveness instead). */
const SERVER_FAULTS = new Set<status>([status.INTERNAL, status.UNKNOWN, status.DATA_LOSS]);
/**
 * grpc-js's own answers to malformed transport input, before any of our code runs (the gRPC status-code table
 * prescribes INTERNAL for a message that does not decompress; grpc-js answers a grpc-timeout it cannot parse the same
 * way). Counted apart (transport_internal), listed in the findings, not in fuzz_5xx: no server code of ours can change them.
 */
const TRANSPORT_INTERNAL = [/^Failed to decompress message$/, /^Invalid grpc-timeout value/];
/** What an INVALID_ARGUMENT / 400 message starts with: the field path (service-kit's InvalidArgumentError). */
const NAMES_FIELD = /^[A-Za-z_][\w.-]*(?:\[[^\n]*?\][\w.-]*)*(?: \d+)?: /;

/** A small seeded generator (mulberry32): the same seed makes the same cases. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }
}

/** Ids a hostile client sends. */
const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  'a'.repeat(10_000),
  'x'.repeat(257),
  '\u0000',
  'user\u0000id',
  '\u0001\u0002\u001b[31m\u007f',
  '\r\nSet-Cookie: a=b',
  '😀👍🏽🇺🇳',
  'مرحبا',
  'e\u0301\u0301\u0301',
  '\ud800',
  '\udfff\ud800',
  '../../etc/passwd',
  '%00%ff',
  '${jndi:ldap://x}',
  "'; DROP TABLE users; --",
  '*',
  '{}',
  '\uFEFF',
  '\u202Eevil',
  'item-1',
  'user-1',
];
const HOSTILE_NUMBERS: readonly string[] = [
  '0',
  '-1',
  '-0',
  '1e400',
  '-1e400',
  '2147483648',
  '-2147483649',
  '9007199254740993',
  '1e308',
  '1.5',
  '0.0000001',
  '99999999999999999999999',
  'NaN',
  'Infinity',
  '-Infinity',
  '"NaN"',
  '"Infinity"',
  '"12"',
  'null',
  'true',
  '[]',
  '{}',
  '[1]',
  '""',
  '"-9223372036854775809"',
  '"9223372036854775807"',
];
const WRONG_TYPES: readonly string[] = ['null', 'true', '1', '-1', '1.5', '"s"', '[]', '{}', '[1]', '{"a":1}', '[null]', '[[]]'];

interface RestCase {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** truncated: the body is cut short of its Content-Length and the connection closed; slowloris: sent a byte at a time. */
  mode?: 'normal' | 'truncated' | 'slowloris';
}

interface Outcome {
  /** HTTP status, gRPC code name, or 'no-answer' (connection closed without an answer). */
  label: string;
  serverFault: boolean;
  /** grpc-js's own INTERNAL for malformed transport input (TRANSPORT_INTERNAL). */
  transport?: boolean;
  /** A refusal that does not name the field. */
  unnamed: boolean;
  detail: string;
}

const jsonString = (value: string) => JSON.stringify(value);

/** Replaces the value of one field in a JSON text template: `{"user_id":@}`. */
const fill = (template: string, value: string) => template.replace('@', value);

function restCases(rng: Rng, full: boolean, auth: Record<string, string>): RestCase[] {
  const cases: RestCase[] = [];
  const json = { 'content-type': 'application/json', ...auth };
  const post = (name: string, path: string, body: string | Buffer, headers: Record<string, string> = json): void => {
    cases.push({ name, method: 'POST', path, headers, body });
  };
  const recommendTemplates = [
    '{"user_id":@}',
    '{"user_id":"user-1","k":@}',
    '{"user_id":"user-1","budget_ms":@}',
    '{"user_id":"user-1","debug":@}',
    '{"user_id":"user-1","context":@}',
    '{"user_id":"user-1","context":{"recent_items":@}}',
    '{"user_id":"user-1","context":{"recent_items":[{"item_id":@}]}}',
    '{"user_id":"user-1","context":{"recent_items":[{"item_id":"item-1","timestamp_ms":@}]}}',
    '{"user_id":"user-1","context":{"recent_items":[{"item_id":"item-1","dwell_seconds":@}]}}',
    '{"user_id":"user-1","context":{"recent_items":[{"item_id":"item-1","event_type":@}]}}',
    '{"user_id":"user-1","context":{"attributes":@}}',
    '{"user_id":"user-1","context":{"attributes":{"device":@}}}',
    '{"user_id":"user-1","context":{"request_time_ms":@}}',
    '{"user_id":"user-1","filter":@}',
    '{"user_id":"user-1","filter":{"include_categories":@}}',
    '{"user_id":"user-1","filter":{"exclude_item_ids":[@]}}',
    '{"user_id":"user-1","filter":{"exclude_categories":[@]}}',
  ];
  const feedbackTemplates = [
    '{"events":@}',
    '{"events":[@]}',
    '{"events":[{"user_id":@,"item_id":"item-1","event_type":"click"}]}',
    '{"events":[{"user_id":"user-1","item_id":@,"event_type":"click"}]}',
    '{"events":[{"user_id":"user-1","item_id":"item-1","event_type":@}]}',
    '{"events":[{"user_id":"user-1","item_id":"item-1","event_type":"click","event_id":@}]}',
    '{"events":[{"user_id":"user-1","item_id":"item-1","event_type":"click","timestamp_ms":@}]}',
    '{"events":[{"user_id":"user-1","item_id":"item-1","event_type":"view","dwell_seconds":@}]}',
    '{"events":[{"user_id":"user-1","item_id":"item-1","event_type":"click","request_id":@}]}',
  ];
  const values = [...HOSTILE_NUMBERS, ...WRONG_TYPES, ...HOSTILE_STRINGS.map(jsonString)];
  for (const [path, templates] of [
    ['/v1/recommendations', recommendTemplates],
    ['/v1/feedback', feedbackTemplates],
  ] as const) {
    for (const template of templates) {
      // Short: a sample of the values per field; full: every value in every field.
      const sample = full ? values : Array.from({ length: 6 }, () => rng.pick(values));
      for (const value of sample) post(`${path} ${template} <- ${value.slice(0, 40)}`, path, fill(template, value));
    }
  }
  // Structure: duplicate keys, unknown fields, deep nesting, huge documents, many events, truncated JSON, non-objects.
  const deep = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth);
  const structural: Array<[string, string, string | Buffer]> = [
    ['duplicate keys', '/v1/recommendations', '{"user_id":"a","user_id":"user-1","k":1,"k":5}'],
    ['duplicate keys of different types', '/v1/recommendations', '{"user_id":"user-1","k":5,"k":"x"}'],
    ['unknown field', '/v1/recommendations', '{"user_id":"user-1","__proto__":{"polluted":true}}'],
    ['constructor field', '/v1/recommendations', '{"user_id":"user-1","constructor":{"prototype":{"x":1}}}'],
    ['deeply nested arrays', '/v1/recommendations', `{"user_id":"user-1","context":${deep(50_000, '[', ']')}}`],
    ['deeply nested objects', '/v1/recommendations', `{"user_id":"user-1","context":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`],
    ['deeply nested feedback', '/v1/feedback', `{"events":${deep(100_000, '[', ']')}}`],
    ['huge body', '/v1/recommendations', `{"user_id":"${'a'.repeat(2_000_000)}"}`],
    [
      'many exclusions',
      '/v1/recommendations',
      `{"user_id":"user-1","filter":{"exclude_item_ids":${JSON.stringify(Array(20_000).fill('i'))}}}`,
    ],
    [
      'many attributes',
      '/v1/recommendations',
      `{"user_id":"user-1","context":{"attributes":{${Array.from({ length: 5000 }, (_, i) => `"a${i}":"v"`).join(',')}}}}`,
    ],
    ['many events', '/v1/feedback', `{"events":${JSON.stringify(Array(5000).fill({ user_id: 'u', item_id: 'i', event_type: 'view' }))}}`],
    ['truncated JSON', '/v1/recommendations', '{"user_id":"user-1","k":1'],
    ['truncated string', '/v1/recommendations', '{"user_id":"us'],
    ['empty body', '/v1/recommendations', ''],
    ['array body', '/v1/recommendations', '[{"user_id":"user-1"}]'],
    ['string body', '/v1/recommendations', '"user-1"'],
    ['number body', '/v1/feedback', '42'],
    ['null body', '/v1/feedback', 'null'],
    ['NaN literal', '/v1/recommendations', '{"user_id":"user-1","k":NaN}'],
    ['comments', '/v1/recommendations', '{"user_id":"user-1" /* x */}'],
    ['trailing comma', '/v1/recommendations', '{"user_id":"user-1",}'],
    ['single quotes', '/v1/recommendations', "{'user_id':'user-1'}"],
    [
      'invalid UTF-8',
      '/v1/recommendations',
      Buffer.concat([Buffer.from('{"user_id":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]),
    ],
    ['UTF-16 BOM', '/v1/recommendations', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"user_id":"u"}', 'utf16le')])],
    ['NUL bytes', '/v1/recommendations', Buffer.from('{"user_id":"u"}\u0000\u0000')],
    ['escaped NUL id', '/v1/recommendations', '{"user_id":"\\u0000"}'],
    ['lone surrogate escape', '/v1/feedback', '{"events":[{"user_id":"\\ud800","item_id":"\\udfff","event_type":"click"}]}'],
  ];
  for (const [name, path, body] of structural) post(name, path, body);
  // Random bytes and random JSON-ish text.
  const randomCount = full ? 300 : 20;
  for (let i = 0; i < randomCount; i++) {
    post(`random bytes ${i}`, rng.pick(['/v1/recommendations', '/v1/feedback']), rng.bytes(1 + rng.int(2048)));
    post(`random JSON ${i}`, rng.pick(['/v1/recommendations', '/v1/feedback']), randomJsonText(rng, 4));
  }
  // Content types and encodings.
  const body = '{"user_id":"user-1"}';
  for (const type of [
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/json; charset=utf-16',
    'application/json; charset=latin1',
    'application/xml',
    'application/octet-stream',
    '',
    'application/json, text/plain',
    'application/jsonx',
  ]) {
    post(`content-type ${type || '(empty)'}`, '/v1/recommendations', body, { ...auth, 'content-type': type });
  }
  post('no content-type', '/v1/recommendations', body, { ...auth });
  post('gzip garbage', '/v1/recommendations', randomBytes(64), { ...json, 'content-encoding': 'gzip' });
  post('unknown encoding', '/v1/recommendations', body, { ...json, 'content-encoding': 'br2' });
  // Query strings, paths, methods, headers.
  const get = (name: string, path: string, headers: Record<string, string> = auth) => cases.push({ name, method: 'GET', path, headers });
  const queryValues = [
    '',
    'abc',
    '-1',
    '0',
    '99999999999',
    '1e3',
    '1.5',
    '%00',
    '%ff',
    '%E0%A4%A',
    'NaN',
    encodeURIComponent('😀'),
    'a'.repeat(5000),
  ];
  for (const param of ['user_id', 'k', 'budget_ms', 'debug', 'recent', 'exclude_item_ids', 'include_categories', 'unknown']) {
    for (const value of full ? queryValues : [rng.pick(queryValues), rng.pick(queryValues)]) {
      get(`GET recommendations ${param}=${value.slice(0, 20)}`, `/v1/recommendations?user_id=user-1&${param}=${value}`);
    }
  }
  get('repeated k', '/v1/recommendations?user_id=user-1&k=1&k=2');
  get('array param', '/v1/recommendations?user_id[]=a&user_id[]=b');
  get('object param', '/v1/recommendations?user_id[a]=b');
  get('deep object param', `/v1/recommendations?user_id${'[a]'.repeat(200)}=b`);
  get('many params', `/v1/recommendations?user_id=u&${Array.from({ length: 2000 }, (_, i) => `p${i}=1`).join('&')}`);
  for (const id of [
    '%00',
    '%ff',
    '%',
    '..',
    '%2e%2e',
    encodeURIComponent('😀'),
    'a'.repeat(300),
    encodeURIComponent('\u0001'),
    '%E0%A4%A',
  ]) {
    get(`similar id ${id.slice(0, 20)}`, `/v1/items/${id}/similar?k=5`);
  }
  get('similar k huge', '/v1/items/item-1/similar?k=2147483647');
  get('similar k negative', '/v1/items/item-1/similar?k=-5');
  for (const method of ['PUT', 'DELETE', 'PATCH', 'TRACE', 'OPTIONS'])
    cases.push({ name: `${method} recommendations`, method, path: '/v1/recommendations', headers: json, body });
  get('unknown path', '/v1/../../etc/passwd');
  get('long path', `/${'a'.repeat(8000)}`);
  get('bad request id header', '/v1/recommendations?user_id=user-1', { ...auth, 'x-request-id': 'a'.repeat(5000) });
  // Access: missing, wrong, malformed keys.
  const wrongKeys: Record<string, string>[] = [
    {},
    { authorization: 'Bearer' },
    { authorization: 'Bearer ' },
    { authorization: 'Basic dXNlcjpwYXNz' },
    { authorization: `Bearer ${'k'.repeat(8000)}` },
    { authorization: 'Bearer wrong-key-0123456789abcdef' },
    { 'x-api-key': 'wrong-key-0123456789abcdef' },
    { 'x-api-key': '' },
    { authorization: 'Bearer a b c' },
  ];
  for (const headers of wrongKeys)
    post(`access ${JSON.stringify(headers).slice(0, 40)}`, '/v1/recommendations', body, { 'content-type': 'application/json', ...headers });
  // Bodies cut short of their Content-Length, and bodies sent a byte at a time.
  for (let i = 0; i < (full ? 20 : 3); i++) {
    cases.push({
      name: `truncated body ${i}`,
      method: 'POST',
      path: '/v1/recommendations',
      headers: json,
      body: '{"user_id":"user-1","k":5}',
      mode: 'truncated',
    });
  }
  for (let i = 0; i < (full ? 8 : 2); i++) {
    cases.push({
      name: `slow-loris body ${i}`,
      method: 'POST',
      path: '/v1/recommendations',
      headers: json,
      body: '{"user_id":"user-1","k":5}',
      mode: 'slowloris',
    });
  }
  return cases;
}

function randomJsonText(rng: Rng, depth: number): string {
  const kind = depth <= 0 ? rng.int(4) : rng.int(6);
  switch (kind) {
    case 0:
      return rng.pick(HOSTILE_NUMBERS);
    case 1:
      return jsonString(rng.pick(HOSTILE_STRINGS));
    case 2:
      return rng.pick(['true', 'false', 'null']);
    case 3:
      return String(rng.next() * 10 ** rng.int(20) * (rng.next() < 0.5 ? -1 : 1));
    case 4:
      return `[${Array.from({ length: rng.int(5) }, () => randomJsonText(rng, depth - 1)).join(',')}]`;
    default: {
      const keys = ['user_id', 'k', 'context', 'filter', 'events', 'item_id', 'event_type', 'budget_ms', 'debug', 'recent_items', 'x'];
      return `{${Array.from({ length: rng.int(5) }, () => `${jsonString(rng.pick(keys))}:${randomJsonText(rng, depth - 1)}`).join(',')}}`;
    }
  }
}

/** Sends one REST case over a fresh or pooled connection and reads the answer. */
function sendRest(base: URL, c: RestCase, agent: http.Agent, slowLorisMs: number): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const body = c.body === undefined ? undefined : Buffer.isBuffer(c.body) ? c.body : Buffer.from(c.body);
    const headers: Record<string, string | number> = { ...c.headers };
    if (body !== undefined) headers['content-length'] = c.mode === 'truncated' ? body.length + 100 : body.length;
    const special = c.mode === 'truncated' || c.mode === 'slowloris';
    const req = http.request(
      { host: base.hostname, port: base.port, method: c.method, path: c.path, headers, agent: special ? false : agent, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    if (body === undefined) {
      req.end();
    } else if (c.mode === 'truncated') {
      req.write(body.subarray(0, Math.floor(body.length / 2)));
      setTimeout(() => req.destroy(), 50);
    } else if (c.mode === 'slowloris') {
      let i = 0;
      const started = Date.now();
      const drip = setInterval(
        () => {
          if (req.destroyed || i >= body.length || Date.now() - started > slowLorisMs) {
            clearInterval(drip);
            if (!req.destroyed && i >= body.length) req.end();
            else req.destroy();
            return;
          }
          req.write(body.subarray(i, i + 1));
          i++;
        },
        Math.max(1, Math.floor(slowLorisMs / (body.length + 1))),
      );
    } else {
      req.end(body);
    }
  });
}

function judgeRest(answer: { status: number; body: string } | undefined): Outcome {
  if (!answer) return { label: 'no-answer', serverFault: false, unnamed: false, detail: '' };
  const { status: code, body } = answer;
  let unnamed = false;
  if (code === 400 || code === 413 || code === 415) {
    try {
      const field = (JSON.parse(body) as { error?: { field?: unknown } }).error?.field;
      unnamed = typeof field !== 'string' || field === '';
    } catch {
      unnamed = true;
    }
  }
  return { label: String(code), serverFault: code >= 500, unnamed, detail: body.slice(0, 200) };
}

// ---- gRPC ----

/** Every service of the contracts, by the name the pipeline uses for its address. */
export const SERVICES: Record<string, DescService> = {
  gateway: gateway.GatewayService,
  features: features.FeatureService,
  retrieval: retrieval.RetrievalService,
  preranking: preranking.PrerankingService,
  ranking: ranking.RankingService,
  reranking: reranking.RerankingService,
};

function hostileScalar(rng: Rng, scalar: ScalarType): unknown {
  switch (scalar) {
    case ScalarType.STRING:
      return rng.pick(HOSTILE_STRINGS);
    case ScalarType.BYTES:
      return rng.bytes(rng.int(64));
    case ScalarType.BOOL:
      return rng.next() < 0.5;
    case ScalarType.DOUBLE:
      return rng.pick([Number.NaN, Infinity, -Infinity, -0, 1e308, -1, 5e-324, 0.5]);
    case ScalarType.FLOAT:
      return rng.pick([Number.NaN, Infinity, -Infinity, -0, 3.4e38, -1, 1e-45, 0.5]);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return rng.pick([0n, -1n, 1n, 2n ** 63n - 1n, -(2n ** 63n), 1700000000000n]);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return rng.pick([0n, 1n, 2n ** 64n - 1n]);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return rng.pick([0, 1, 2 ** 32 - 1]);
    default:
      return rng.pick([0, -1, 1, 2 ** 31 - 1, -(2 ** 31), 20]);
  }
}

/** A random, well-typed message with hostile values: what a buggy or malicious client that uses the contracts sends. */
export function hostileMessage(rng: Rng, schema: DescMessage, depth = 0, maxList = 50): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  for (const field of schema.fields) {
    if (rng.next() < 0.3) continue;
    const value = hostileFieldValue(rng, field, depth, maxList);
    if (value !== undefined) init[field.localName] = value;
  }
  return init;
}

function hostileFieldValue(rng: Rng, field: DescField, depth: number, maxList: number): unknown {
  const single = (): unknown => {
    if (field.fieldKind === 'scalar' || (field.fieldKind === 'list' && field.listKind === 'scalar'))
      return hostileScalar(rng, field.scalar);
    if (field.fieldKind === 'enum' || (field.fieldKind === 'list' && field.listKind === 'enum'))
      return rng.pick([0, 1, 2, 99, -1, 2 ** 31 - 1]);
    if ((field.fieldKind === 'message' || (field.fieldKind === 'list' && field.listKind === 'message')) && depth < 4)
      return create(field.message!, hostileMessage(rng, field.message!, depth + 1, maxList) as never);
    return undefined;
  };
  if (field.fieldKind === 'list') {
    // Sometimes a huge list at the top level (still under the message size limit); nested lists stay short, or the
    // message would grow as the product of the lengths.
    const length = depth === 0 && rng.next() < 0.05 ? 20_000 : rng.int(depth === 0 ? maxList : 5);
    const first = single();
    if (first === undefined) return undefined;
    return Array.from({ length }, (_, i) => (i === 0 ? first : field.listKind === 'message' && i > 20 ? first : single()));
  }
  if (field.fieldKind === 'map') {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < rng.int(10); i++) {
      const key = String(rng.pick(HOSTILE_STRINGS)).slice(0, 100);
      out[key] = field.mapKind === 'scalar' ? hostileScalar(rng, field.scalar) : field.mapKind === 'enum' ? 1 : create(field.message!, {});
    }
    return out;
  }
  return single();
}

/** One field encoded with a wire type its declaration does not have. */
function wrongWireType(field: DescField, rng: Rng): Uint8Array {
  const writer = new BinaryWriter();
  const declared =
    field.fieldKind === 'message' || field.fieldKind === 'map' || (field.fieldKind === 'list' && field.listKind === 'message')
      ? WireType.LengthDelimited
      : (field.fieldKind === 'scalar' || (field.fieldKind === 'list' && field.listKind === 'scalar')) &&
          (field.scalar === ScalarType.STRING || field.scalar === ScalarType.BYTES)
        ? WireType.LengthDelimited
        : WireType.Varint;
  const wrong =
    declared === WireType.LengthDelimited ? rng.pick([WireType.Varint, WireType.Bit32, WireType.Bit64]) : WireType.LengthDelimited;
  writer.tag(field.number, wrong);
  if (wrong === WireType.Varint) writer.uint64(123456789n);
  else if (wrong === WireType.Bit32) writer.fixed32(0xdeadbeef);
  else if (wrong === WireType.Bit64) writer.fixed64(0xdeadbeefn);
  else writer.bytes(Uint8Array.from([0xff, 0x00, 0x01, 0x80]));
  return writer.finish();
}

/** A valid message with fields the schema does not have, of every wire type. */
function withUnknownFields(bytes: Uint8Array): Uint8Array {
  const writer = new BinaryWriter();
  writer.raw(bytes);
  writer.tag(9001, WireType.Varint).uint64(1n);
  writer.tag(9002, WireType.LengthDelimited).string('unknown');
  writer.tag(9003, WireType.Bit32).fixed32(7);
  writer.tag(9004, WireType.Bit64).fixed64(7n);
  return writer.finish();
}

interface GrpcCase {
  name: string;
  service: string;
  path: string;
  bytes: Uint8Array;
}

function grpcCases(rng: Rng, full: boolean): GrpcCase[] {
  const cases: GrpcCase[] = [];
  for (const [name, service] of Object.entries(SERVICES)) {
    for (const method of service.methods) {
      const path = `/${service.typeName}/${method.name}`;
      const add = (what: string, bytes: Uint8Array) => cases.push({ name: `${name} ${method.name}: ${what}`, service: name, path, bytes });
      const rounds = full ? 12 : 2;
      for (let i = 0; i < rounds; i++) {
        add(`random bytes ${i}`, rng.bytes(rng.int(i === 0 ? 8 : 512)));
        const message = create(method.input, hostileMessage(rng, method.input, 0, full ? 200 : 20) as never);
        const bytes = toBinary(method.input, message);
        // Oversized messages are their own case below; a random one that grew past a few MiB is left out.
        if (bytes.length > 4 * 1024 * 1024) continue;
        add(`hostile message ${i}`, bytes);
        if (bytes.length > 1) add(`truncated message ${i}`, bytes.subarray(0, 1 + rng.int(bytes.length - 1)));
        add(`unknown fields ${i}`, withUnknownFields(bytes));
      }
      add('empty message', new Uint8Array());
      for (const field of method.input.fields) add(`wrong wire type for ${field.name}`, wrongWireType(field, rng));
    }
  }
  return cases;
}

function grpcCall(client: Client, path: string, bytes: Uint8Array, metadata: Metadata): Promise<{ code: status; details: string }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(bytes),
      metadata,
      { deadline: Date.now() + 10_000 },
      (error: ServiceError | null) => resolve(error ? { code: error.code, details: error.details } : { code: status.OK, details: '' }),
    );
  });
}

function judgeGrpc(answer: { code: status; details: string }): Outcome {
  const transport = answer.code === status.INTERNAL && TRANSPORT_INTERNAL.some((pattern) => pattern.test(answer.details));
  return {
    label: status[answer.code] ?? String(answer.code),
    transport,
    serverFault: SERVER_FAULTS.has(answer.code) && !transport,
    unnamed: answer.code === status.INVALID_ARGUMENT && !NAMES_FIELD.test(answer.details),
    detail: answer.details.slice(0, 200),
  };
}

/** gRPC frames that are not well formed, over a raw HTTP/2 stream: grpc-js's own framing and header checks. */
async function rawFrameCases(
  address: string,
  path: string,
  auth: Record<string, string>,
  full: boolean,
): Promise<Array<[string, Outcome]>> {
  const frame = (compressed: number, declared: number, payload: Buffer) => {
    const header = Buffer.alloc(5);
    header[0] = compressed;
    header.writeUInt32BE(declared, 1);
    return Buffer.concat([header, payload]);
  };
  const variants: Array<[string, Record<string, string>, Buffer]> = [
    ['frame shorter than its length prefix', {}, frame(0, 100, Buffer.from([0x0a, 0x01]))],
    ['frame header cut short', {}, Buffer.from([0, 0, 0])],
    ['two messages in a unary call', {}, Buffer.concat([frame(0, 0, Buffer.alloc(0)), frame(0, 0, Buffer.alloc(0))])],
    ['length prefix of 4 GiB', {}, frame(0, 0xffffffff, Buffer.from([1, 2, 3]))],
    ['compressed flag without an encoding', {}, frame(1, 3, Buffer.from([1, 2, 3]))],
    ['gzip encoding with garbage', { 'grpc-encoding': 'gzip' }, frame(1, 8, randomBytes(8))],
    ['unknown encoding', { 'grpc-encoding': 'zstd9' }, frame(1, 3, Buffer.from([1, 2, 3]))],
    ['bad grpc-timeout', { 'grpc-timeout': 'soon' }, frame(0, 0, Buffer.alloc(0))],
    ['wrong content-type', { 'content-type': 'application/json' }, Buffer.from('{"user_id":"u"}')],
    ['no body', {}, Buffer.alloc(0)],
  ];
  const out: Array<[string, Outcome]> = [];
  const session = http2.connect(`http://${address}`);
  session.on('error', () => undefined);
  try {
    for (const [name, extra, body] of full ? variants : variants) {
      const outcome = await new Promise<Outcome>((resolve) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          ...auth,
          ...extra,
        });
        let httpStatus = 0;
        let grpcStatus: number | undefined;
        let details = '';
        const take = (headers: http2.IncomingHttpHeaders) => {
          if (headers[':status'] !== undefined) httpStatus = Number(headers[':status']);
          if (headers['grpc-status'] !== undefined) grpcStatus = Number(headers['grpc-status']);
          if (typeof headers['grpc-message'] === 'string') details = decodeURIComponent(headers['grpc-message']);
        };
        stream.on('response', take);
        stream.on('trailers', take);
        stream.on('data', () => undefined);
        const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), 5000);
        stream.on('close', () => {
          clearTimeout(timer);
          if (grpcStatus !== undefined) resolve(judgeGrpc({ code: grpcStatus, details }));
          else resolve({ label: `http-${httpStatus || 'none'}`, serverFault: httpStatus >= 500, unnamed: false, detail: '' });
        });
        stream.on('error', () => undefined);
        stream.end(body);
      });
      out.push([name, outcome]);
    }
  } finally {
    session.close();
  }
  return out;
}

// ---- processes ----

function rssKiB(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function pool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Runs the fuzz cases against the running pipeline; see the file comment. */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzResult> {
  const full = opts.cases === 'full';
  const rng = new Rng(opts.seed ?? 20261202);
  const apiKey = opts.apiKey ?? process.env.RECSYS_API_KEY;
  const auth: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  const findings: string[] = [];
  const byTarget: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  let cases = 0;
  let faults = 0;
  let transportInternal = 0;
  const record = (target: string, name: string, outcome: Outcome) => {
    cases++;
    byTarget[target] = (byTarget[target] ?? 0) + 1;
    byStatus[outcome.label] = (byStatus[outcome.label] ?? 0) + 1;
    if (outcome.transport) {
      transportInternal++;
      findings.push(`${target} "${name}": grpc-js transport answer (not counted in fuzz_5xx) ${outcome.label} ${outcome.detail}`);
    } else if (outcome.serverFault) {
      faults++;
      if (findings.length < 200) findings.push(`${target} "${name}": server error ${outcome.label} ${outcome.detail}`);
    } else if (outcome.unnamed && findings.length < 200) {
      findings.push(`${target} "${name}": refusal ${outcome.label} does not name the field: ${outcome.detail}`);
    }
  };
  const pids = opts.pids ?? {};
  const rssBefore = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, rssKiB(pid)]));

  // REST.
  const base = new URL(opts.gatewayRest);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const rest = restCases(rng, full, auth);
  const slow = rest.filter((c) => c.mode === 'slowloris');
  const slowLorisMs = full ? 15_000 : 2_000;
  // Slow-loris bodies run beside the other cases: the server keeps answering while they hold connections.
  const slowRuns = Promise.all(
    slow.map(async (c) => {
      const answer = await sendRest(base, c, agent, slowLorisMs);
      record('rest', c.name, judgeRest(answer));
    }),
  );
  await pool(
    rest.filter((c) => c.mode !== 'slowloris'),
    8,
    async (c) => record('rest', c.name, judgeRest(await sendRest(base, c, agent, slowLorisMs))),
  );
  await slowRuns;
  agent.destroy();

  // gRPC, every RPC of every service.
  const addresses: Record<string, string> = { ...opts.stageAddresses, gateway: opts.gatewayGrpc };
  const clients = new Map<string, Client>();
  const metadata = new Metadata();
  if (apiKey) metadata.set('authorization', `Bearer ${apiKey}`);
  try {
    const all = grpcCases(rng, full).filter((c) => addresses[c.service] && !addresses[c.service]!.startsWith('inproc:'));
    for (const c of all) {
      if (!clients.has(c.service))
        clients.set(c.service, new Client(addresses[c.service]!, credentials.createInsecure(), { 'grpc.max_send_message_length': -1 }));
    }
    await pool(all, 8, async (c) =>
      record(`grpc:${c.service}`, c.name, judgeGrpc(await grpcCall(clients.get(c.service)!, c.path, c.bytes, metadata))),
    );
    // Oversized messages (over the 64 MiB receive limit): one per service in the full run, the gateway's in the short one.
    for (const [name, service] of Object.entries(SERVICES)) {
      if (!clients.has(name) || (!full && name !== 'gateway')) continue;
      const method = service.methods[0]!;
      const huge = new BinaryWriter()
        .tag(1, WireType.LengthDelimited)
        .bytes(new Uint8Array(65 * 1024 * 1024))
        .finish();
      record(
        `grpc:${name}`,
        `${method.name}: oversized message`,
        judgeGrpc(await grpcCall(clients.get(name)!, `/${service.typeName}/${method.name}`, huge, metadata)),
      );
    }
    // Malformed frames and headers over raw HTTP/2.
    for (const [name, service] of Object.entries(SERVICES)) {
      if (!clients.has(name) || (!full && name !== 'gateway')) continue;
      const path = `/${service.typeName}/${service.methods[0]!.name}`;
      for (const [what, outcome] of await rawFrameCases(addresses[name]!, path, auth, full))
        record(`grpc:${name}`, `frame: ${what}`, outcome);
    }
  } finally {
    for (const client of clients.values()) client.close();
  }

  // Still alive and serving.
  let crashes = 0;
  for (const [name, pid] of Object.entries(pids)) {
    if (!alive(pid)) {
      crashes++;
      findings.push(`${name} (pid ${pid}) is gone after the fuzz run`);
    }
  }
  for (const [name, address] of Object.entries(addresses)) {
    if (address.startsWith('inproc:')) continue;
    const health = await checkHealth(address, '', 3000).catch((error: unknown) => `unreachable: ${(error as Error).message}`);
    if (health !== 'SERVING') {
      if (!Object.keys(pids).includes(name)) crashes++;
      findings.push(`${name} at ${address} is not serving after the fuzz run: ${health}`);
    }
  }
  let rssGrowth: number | undefined;
  const rssMib: Record<string, [number, number]> = {};
  for (const [name, pid] of Object.entries(pids)) {
    const before = rssBefore[name];
    const after = rssKiB(pid);
    if (before === undefined || after === undefined) continue;
    rssMib[name] = [Math.round(before / 102.4) / 10, Math.round(after / 102.4) / 10];
    const growth = ((after - before) / before) * 100;
    rssGrowth = Math.max(rssGrowth ?? -Infinity, growth);
  }
  return {
    fuzz_cases: cases,
    fuzz_5xx: faults,
    transport_internal: transportInternal,
    crashes,
    ...(rssGrowth !== undefined ? { rss_growth_pct: Math.round(rssGrowth * 10) / 10 } : {}),
    findings,
    by_target: byTarget,
    by_status: byStatus,
    ...(Object.keys(rssMib).length > 0 ? { rss_mib: rssMib } : {}),
  };
}
