import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { BinaryReader, type WireType } from '@bufbuild/protobuf/wire';

/**
 * A TEST DOUBLE of an OpenTelemetry collector's OTLP/HTTP receiver: a real HTTP server on a free loopback port
 * that accepts `POST /v1/traces` in the default protocol (http/protobuf, gzip or not), decodes the spans from
 * the protobuf wire format (opentelemetry-proto's trace.proto field numbers) and keeps them for assertions.
 */

export interface ReceivedSpan {
  service: string;
  scope: string;
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** 1 internal, 2 server, 3 client (SpanKind in trace.proto). */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  startNs: bigint;
  endNs: bigint;
}

export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const;

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/** Calls `field` for each field of the message in `bytes`; fields it does not take are skipped. */
function fields(bytes: Uint8Array, field: (no: number, reader: BinaryReader, wireType: WireType) => boolean): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (!field(no, reader, wireType)) reader.skip(wireType, no);
  }
}

function anyValue(bytes: Uint8Array): string | number | boolean {
  let value: string | number | boolean = '';
  fields(bytes, (no, r) => {
    if (no === 1) value = r.string();
    else if (no === 2) value = r.bool();
    else if (no === 3) value = Number(r.int64());
    else if (no === 4) value = r.double();
    else return false;
    return true;
  });
  return value;
}

function keyValues(list: Uint8Array[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const bytes of list) {
    let key = '';
    let value: string | number | boolean = '';
    fields(bytes, (no, r) => {
      if (no === 1) key = r.string();
      else if (no === 2) value = anyValue(r.bytes());
      else return false;
      return true;
    });
    out[key] = value;
  }
  return out;
}

function decodeSpan(bytes: Uint8Array, service: string, scope: string): ReceivedSpan {
  const span: ReceivedSpan = {
    service,
    scope,
    traceId: '',
    spanId: '',
    parentSpanId: '',
    name: '',
    kind: 0,
    attributes: {},
    statusCode: 0,
    startNs: 0n,
    endNs: 0n,
  };
  const attributes: Uint8Array[] = [];
  fields(bytes, (no, r) => {
    if (no === 1) span.traceId = hex(r.bytes());
    else if (no === 2) span.spanId = hex(r.bytes());
    else if (no === 4) span.parentSpanId = hex(r.bytes());
    else if (no === 5) span.name = r.string();
    else if (no === 6) span.kind = r.int32();
    else if (no === 7) span.startNs = BigInt(r.fixed64());
    else if (no === 8) span.endNs = BigInt(r.fixed64());
    else if (no === 9) attributes.push(r.bytes());
    else if (no === 15) fields(r.bytes(), (n, s) => (n === 3 ? ((span.statusCode = s.int32()), true) : false));
    else return false;
    return true;
  });
  span.attributes = keyValues(attributes);
  return span;
}

/** The spans of one ExportTraceServiceRequest. */
export function decodeExportTraceRequest(body: Uint8Array): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  fields(body, (no, r) => {
    if (no !== 1) return false;
    // ResourceSpans: 1 resource, 2 scope_spans.
    let service = '';
    const scopeSpans: Uint8Array[] = [];
    fields(r.bytes(), (n, rs) => {
      if (n === 1) {
        const attributes: Uint8Array[] = [];
        fields(rs.bytes(), (m, res) => (m === 1 ? (attributes.push(res.bytes()), true) : false));
        service = String(keyValues(attributes)['service.name'] ?? '');
      } else if (n === 2) scopeSpans.push(rs.bytes());
      else return false;
      return true;
    });
    for (const bytes of scopeSpans) {
      // ScopeSpans: 1 scope (1 name), 2 spans.
      let scope = '';
      const raw: Uint8Array[] = [];
      fields(bytes, (n, ss) => {
        if (n === 1) fields(ss.bytes(), (m, sc) => (m === 1 ? ((scope = sc.string()), true) : false));
        else if (n === 2) raw.push(ss.bytes());
        else return false;
        return true;
      });
      for (const span of raw) spans.push(decodeSpan(span, service, scope));
    }
    return true;
  });
  return spans;
}

export interface OtlpCollectorDouble {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Content types of the requests received (the protocol the exporters used). */
  readonly contentTypes: string[];
  /** Resolves when `done(spans)` holds, polling; rejects with what was received after `timeoutMs`. */
  waitFor(done: (spans: ReceivedSpan[]) => boolean, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startOtlpCollectorDouble(): Promise<OtlpCollectorDouble> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const type = req.headers['content-type'] ?? '';
      if (req.method !== 'POST' || req.url !== '/v1/traces' || type !== 'application/x-protobuf') {
        res.writeHead(415).end();
        return;
      }
      contentTypes.push(type);
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      spans.push(...decodeExportTraceRequest(body));
      // An empty ExportTraceServiceResponse: everything accepted.
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    waitFor: async (done, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      while (!done(spans)) {
        if (Date.now() > deadline) {
          const seen = spans.map((s) => `${s.service} ${s.name}`).join('\n');
          throw new Error(`the spans expected did not all arrive in ${timeoutMs} ms; received:\n${seen}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
