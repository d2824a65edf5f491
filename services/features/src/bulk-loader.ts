import { createReadStream, statSync } from 'node:fs';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { parse } from 'csv-parse';
import type { features } from '@recsys/contracts';
import type { ServiceClient } from '@recsys/service-kit';
import { csvColumns, parseCsvRow, parseJsonRow, type EntityKind, type ParsedRow } from './bulk-rows.js';

export interface Rejection {
  /** 1-based line (JSONL) or record (CSV, header excluded) number in the file. */
  line: number;
  id: string;
  reason: string;
}

export interface LoadProgress {
  bytesRead: number;
  totalBytes: number;
  stored: number;
  rejected: number;
}

export interface LoadResult {
  stored: number;
  rejected: Rejection[];
}

export interface LoadOptions {
  batchSize: number;
  onProgress?: (progress: LoadProgress) => void;
}

type FeatureClient = Pick<ServiceClient<typeof features.FeatureService.method>, 'upsertUsers' | 'upsertItems'>;

/** Rows of a JSONL or CSV file, by its extension, with the bytes read so far. */
export async function* readRows(kind: EntityKind, path: string, bytesRead: { value: number }): AsyncGenerator<ParsedRow> {
  const stream = createReadStream(path);
  stream.on('data', (chunk) => (bytesRead.value += chunk.length));
  const extension = extname(path).toLowerCase();
  if (extension === '.csv') {
    const parser = stream.pipe(parse({ relax_column_count: true, bom: true, skip_empty_lines: true }));
    let columns: ReturnType<typeof csvColumns> | undefined;
    let record = 0;
    for await (const cells of parser as AsyncIterable<string[]>) {
      if (!columns) {
        columns = csvColumns(kind, cells);
        continue;
      }
      yield parseCsvRow(kind, columns, cells, ++record);
    }
    return;
  }
  if (extension !== '.jsonl' && extension !== '.ndjson') {
    stream.destroy();
    throw new Error(`${path}: unknown format "${extension}"; use .jsonl, .ndjson or .csv`);
  }
  let line = 0;
  for await (const text of createInterface({ input: stream, crlfDelay: Infinity })) {
    line++;
    if (text.trim() === '') continue;
    yield parseJsonRow(kind, text, line);
  }
}

/** Streams a file into the feature service in batches; bad rows are counted with their reasons, the rest stored. */
export async function loadFile(client: FeatureClient, kind: EntityKind, path: string, options: LoadOptions): Promise<LoadResult> {
  const totalBytes = statSync(path).size;
  const bytesRead = { value: 0 };
  const rejected: Rejection[] = [];
  let stored = 0;
  let batch: Extract<ParsedRow, { ok: true }>[] = [];

  const flush = async () => {
    if (batch.length === 0) return;
    const rows = batch;
    batch = [];
    const response =
      kind === 'users'
        ? await client.upsertUsers({ users: rows.map((r) => r.value as features.User) })
        : await client.upsertItems({ items: rows.map((r) => r.value as features.Item) });
    stored += response.stored;
    for (const r of response.rejected) rejected.push({ line: rows[r.index]?.line ?? -1, id: r.id, reason: r.reason });
    options.onProgress?.({ bytesRead: bytesRead.value, totalBytes, stored, rejected: rejected.length });
  };

  for await (const row of readRows(kind, path, bytesRead)) {
    if (!row.ok) {
      rejected.push({ line: row.line, id: row.id, reason: row.reason });
      continue;
    }
    batch.push(row);
    if (batch.length >= options.batchSize) await flush();
  }
  await flush();
  options.onProgress?.({ bytesRead: totalBytes, totalBytes, stored, rejected: rejected.length });
  return { stored, rejected };
}
