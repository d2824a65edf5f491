import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { createInteractions, tableFromRows, type Row, type RowValue } from './table.js';
import { readText, textLines } from './text-file.js';
import { type Column, type Dataset, type EntityTable, type Interactions } from './types.js';

export interface LoadDatasetOptions {
  /** Defaults to the directory's name. */
  name?: string;
  /** Defaults to 1 (clicks, purchases). */
  positiveThreshold?: number;
}

type Entity = 'users' | 'items';
const ID_COLUMN: Record<Entity, string> = { users: 'user_id', items: 'item_id' };
const INTERACTION_COLUMNS = ['user_id', 'item_id', 'value', 'timestamp'];

interface CsvRecord {
  cells: string[];
  line: number;
}

interface CsvColumn {
  name: string;
  type: 'cat' | 'num' | 'multi';
}

function readCsv(path: string, file: string): { header: string[]; records: CsvRecord[] } {
  let parsed: { record: string[]; info: { lines: number } }[];
  try {
    parsed = parse(readText(path), { bom: true, skip_empty_lines: true, relax_column_count: true, info: true }) as unknown as typeof parsed;
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
  const [head, ...rest] = parsed;
  if (head === undefined) throw new Error(`${file}: the file is empty (a header line is required)`);
  const header = head.record.map((h) => h.trim());
  const records = rest.map(({ record, info }) => ({ cells: record, line: info.lines }));
  for (const { cells, line } of records) {
    if (cells.length !== header.length) throw new Error(`${file} line ${line}: expected ${header.length} columns, got ${cells.length}`);
  }
  return { header, records };
}

/** `name:type` header cells: cat (the default), num or multi. */
function csvColumns(file: string, header: string[]): CsvColumn[] {
  const seen = new Set<string>();
  return header.map((cell) => {
    const [name = '', type = 'cat', ...extra] = cell.split(':');
    if (name === '' || extra.length > 0) throw new Error(`${file}: bad header cell "${cell}" (use name or name:type)`);
    if (seen.has(name)) throw new Error(`${file}: column "${name}" appears twice in the header`);
    seen.add(name);
    if (type === 'vec') throw new Error(`${file}: column "${name}": vector columns are not supported by the dataset model`);
    if (type !== 'cat' && type !== 'num' && type !== 'multi')
      throw new Error(`${file}: column "${name}": unknown type "${type}" (use cat, num or multi)`);
    return { name, type };
  });
}

function parseNumber(file: string, line: number, name: string, cell: string): number {
  if (cell.trim() === '') return NaN;
  const n = Number(cell);
  if (!Number.isFinite(n)) throw new Error(`${file} line ${line}: ${name}: "${cell.slice(0, 40)}" is not a number`);
  return n;
}

/** created_at as Unix ms: a number of ms or an ISO-8601 date; missing → NaN. */
function parseCreatedAt(file: string, line: number, value: unknown): number {
  if (value === undefined || value === null || value === '') return NaN;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string') {
    if (/^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value);
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new Error(`${file} line ${line}: created_at: ${JSON.stringify(value).slice(0, 40)} is neither Unix ms nor an ISO date`);
}

function csvCell(type: CsvColumn['type'], cell: string, file: string, line: number, name: string): RowValue | undefined {
  if (type === 'num') {
    const n = parseNumber(file, line, name, cell);
    return Number.isNaN(n) ? undefined : n;
  }
  if (type === 'multi') return cell.split('|').filter((v) => v !== '');
  return cell;
}

function emptyColumn(kind: Column['kind'], rows: number): Column {
  if (kind === 'numeric') return { kind, values: new Float64Array(rows).fill(NaN) };
  if (kind === 'multi') return { kind, values: Array.from({ length: rows }, () => []) };
  return { kind, values: new Array<string>(rows).fill('') };
}

/** Row objects (with their lines) into a table, naming the file in any error. */
function toTable(entity: Entity, file: string, ids: string[], lines: number[], rows: Partial<Row>[]): EntityTable {
  const seen = new Map<string, number>();
  for (let r = 0; r < ids.length; r++) {
    const first = seen.get(ids[r]!);
    if (first !== undefined)
      throw new Error(`${file} line ${lines[r]}: duplicate ${ID_COLUMN[entity]} "${ids[r]}" (first on line ${first})`);
    seen.set(ids[r]!, lines[r]!);
  }
  let table: EntityTable;
  try {
    table = tableFromRows(ids, rows);
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
  if (entity === 'items') {
    const category = table.columns.category ?? emptyColumn('categorical', ids.length);
    const createdAt = table.columns.created_at ?? emptyColumn('numeric', ids.length);
    if (category.kind !== 'categorical') throw new Error(`${file}: category must be a string`);
    table.columns = { category, created_at: createdAt, ...table.columns };
  }
  return table;
}

function jsonValue(file: string, line: number, name: string, value: unknown): RowValue | undefined {
  if (value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  throw new Error(
    `${file} line ${line}: features.${name}: unsupported value ${JSON.stringify(value).slice(0, 40)} (use a string, a number or an array of strings)`,
  );
}

function readJsonl(entity: Entity, path: string, file: string): EntityTable {
  const ids: string[] = [];
  const lines: number[] = [];
  const rows: Partial<Row>[] = [];
  for (const { line, text } of textLines(readText(path))) {
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch (error) {
      throw new Error(`${file} line ${line}: malformed JSON: ${(error as Error).message}`);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record))
      throw new Error(`${file} line ${line}: a row must be a JSON object`);
    const fields = record as Record<string, unknown>;
    const id = fields[ID_COLUMN[entity]];
    if ((typeof id !== 'string' || id === '') && typeof id !== 'number')
      throw new Error(`${file} line ${line}: ${ID_COLUMN[entity]} is missing`);
    const features = fields.features ?? {};
    if (typeof features !== 'object' || features === null || Array.isArray(features))
      throw new Error(`${file} line ${line}: features must be an object`);
    const row: Partial<Row> = {};
    if (entity === 'items') {
      if (fields.category !== undefined && fields.category !== null && typeof fields.category !== 'string') {
        throw new Error(`${file} line ${line}: category must be a string`);
      }
      row.category = fields.category ?? '';
      const createdAt = parseCreatedAt(file, line, fields.created_at);
      if (!Number.isNaN(createdAt)) row.created_at = createdAt;
    }
    for (const [name, value] of Object.entries(features)) {
      if (name in row) throw new Error(`${file} line ${line}: features.${name} clashes with the top-level ${name}`);
      const parsed = jsonValue(file, line, name, value);
      if (parsed !== undefined) row[name] = parsed;
    }
    ids.push(String(id));
    lines.push(line);
    rows.push(row);
  }
  return toTable(entity, file, ids, lines, rows);
}

function readEntityCsv(entity: Entity, path: string, file: string): EntityTable {
  const { header, records } = readCsv(path, file);
  const columns = csvColumns(file, header);
  const idIndex = columns.findIndex((c) => c.name === ID_COLUMN[entity]);
  if (idIndex < 0) throw new Error(`${file}: the header has no ${ID_COLUMN[entity]} column (header: ${header.join(',')})`);
  const ids: string[] = [];
  const lines: number[] = [];
  const rows: Partial<Row>[] = [];
  for (const { cells, line } of records) {
    const id = cells[idIndex]!.trim();
    if (id === '') throw new Error(`${file} line ${line}: ${ID_COLUMN[entity]} is missing`);
    const row: Partial<Row> = {};
    for (let c = 0; c < columns.length; c++) {
      if (c === idIndex) continue;
      const { name, type } = columns[c]!;
      const cell = cells[c]!;
      if (entity === 'items' && name === 'category') row.category = cell;
      else if (entity === 'items' && name === 'created_at') {
        const ms = parseCreatedAt(file, line, cell);
        if (!Number.isNaN(ms)) row.created_at = ms;
      } else {
        const value = csvCell(type, cell, file, line, name);
        if (value !== undefined) row[name] = value;
      }
    }
    ids.push(id);
    lines.push(line);
    rows.push(row);
  }
  const table = toTable(entity, file, ids, lines, rows);
  // A typed header fixes the kind even of a column whose cells are all empty.
  for (const { name, type } of columns) {
    if (name === ID_COLUMN[entity] || name in table.columns) continue;
    table.columns[name] = emptyColumn(type === 'num' ? 'numeric' : type === 'multi' ? 'multi' : 'categorical', ids.length);
  }
  return table;
}

function readEntities(dir: string, entity: Entity): EntityTable {
  const jsonl = join(dir, `${entity}.jsonl`);
  const csv = join(dir, `${entity}.csv`);
  if (existsSync(jsonl) && existsSync(csv)) throw new Error(`${dir}: both ${entity}.jsonl and ${entity}.csv exist; keep one`);
  if (existsSync(jsonl)) return readJsonl(entity, jsonl, `${entity}.jsonl`);
  if (existsSync(csv)) return readEntityCsv(entity, csv, `${entity}.csv`);
  throw new Error(`${dir}: neither ${entity}.jsonl nor ${entity}.csv exists`);
}

/** A timestamp cell as seconds: a number of seconds or an ISO-8601 date. */
function parseTimestamp(file: string, line: number, cell: string): number {
  const trimmed = cell.trim();
  if (trimmed !== '' && Number.isFinite(Number(trimmed))) return Number(trimmed);
  const ms = Date.parse(trimmed);
  if (trimmed === '' || Number.isNaN(ms))
    throw new Error(`${file} line ${line}: timestamp: "${cell.slice(0, 40)}" is neither seconds nor an ISO date`);
  return ms / 1000;
}

function readInteractions(dir: string, users: EntityTable, items: EntityTable): Interactions {
  const file = 'interactions.csv';
  const path = join(dir, file);
  if (!existsSync(path)) throw new Error(`${dir}: ${file} does not exist`);
  const { header, records } = readCsv(path, file);
  const columns = csvColumns(file, header);
  const at = (name: string): number => columns.findIndex((c) => c.name === name);
  const missing = INTERACTION_COLUMNS.filter((name) => at(name) < 0);
  if (missing.length > 0) throw new Error(`${file}: the header lacks ${missing.join(', ')} (header: ${header.join(',')})`);
  const [u, i, v, t] = INTERACTION_COLUMNS.map(at) as [number, number, number, number];
  const n = records.length;
  const out: Interactions = createInteractions(n);
  const contextColumns = columns.map((c, k) => ({ ...c, k })).filter((c) => !INTERACTION_COLUMNS.includes(c.name));
  for (const { name, type } of contextColumns) {
    out.context[name] = emptyColumn(type === 'num' ? 'numeric' : type === 'multi' ? 'multi' : 'categorical', n);
  }
  for (let r = 0; r < n; r++) {
    const { cells, line } = records[r]!;
    const user = users.index.get(cells[u]!.trim());
    if (user === undefined) throw new Error(`${file} line ${line}: unknown user_id "${cells[u]}" (not in the users file)`);
    const item = items.index.get(cells[i]!.trim());
    if (item === undefined) throw new Error(`${file} line ${line}: unknown item_id "${cells[i]}" (not in the items file)`);
    const value = parseNumber(file, line, 'value', cells[v]!);
    if (Number.isNaN(value)) throw new Error(`${file} line ${line}: value is missing`);
    out.user[r] = user;
    out.item[r] = item;
    out.value[r] = value;
    out.timestamp[r] = parseTimestamp(file, line, cells[t]!);
    for (const { name, type, k } of contextColumns) {
      const column = out.context[name]!;
      const cell = cells[k]!;
      if (type === 'num') column.values[r] = parseNumber(file, line, name, cell);
      else if (type === 'multi') column.values[r] = csvCell(type, cell, file, line, name) as string[];
      else column.values[r] = cell;
    }
  }
  return out;
}

/** Reads users.{jsonl,csv}, items.{jsonl,csv} and interactions.csv; an interaction naming an unknown user or item is an error. */
export function loadDatasetFiles(dir: string, options: LoadDatasetOptions = {}): Dataset {
  const users = readEntities(dir, 'users');
  const items = readEntities(dir, 'items');
  const interactions = readInteractions(dir, users, items);
  return { name: options.name ?? basename(resolve(dir)), users, items, interactions, positiveThreshold: options.positiveThreshold ?? 1 };
}

function quote(cell: string): string {
  return /[",\r\n]/.test(cell) ? `"${cell.replaceAll('"', '""')}"` : cell;
}

function headerCell(file: string, name: string, column: Column): string {
  if (name.includes(':') || name.trim() !== name || name === '')
    throw new Error(`${file}: column "${name}" cannot be written (no ':' or edge spaces in names)`);
  return column.kind === 'numeric' ? `${name}:num` : column.kind === 'multi' ? `${name}:multi` : name;
}

function cellText(file: string, name: string, column: Column, row: number): string {
  if (column.kind === 'numeric') {
    const value = column.values[row]!;
    return Number.isNaN(value) ? '' : String(value);
  }
  if (column.kind === 'multi') {
    const values = column.values[row]!;
    const bad = values.find((v) => v === '' || v.includes('|'));
    if (bad !== undefined)
      throw new Error(`${file}: column "${name}" row ${row}: the value "${bad}" cannot be written ('' or holding '|')`);
    return quote(values.join('|'));
  }
  return quote(column.values[row]!);
}

function csvText(file: string, header: string[], columns: [string, Column][], rows: number, fixed: (row: number) => string[]): string {
  const named = columns.map(([name, column]) => headerCell(file, name, column));
  const out = [[...header, ...named].join(',')];
  for (let r = 0; r < rows; r++) {
    out.push([...fixed(r), ...columns.map(([name, column]) => cellText(file, name, column, r))].join(','));
  }
  return out.join('\n') + '\n';
}

function jsonFeature(column: Column, row: number): RowValue | null {
  if (column.kind !== 'numeric') return column.values[row]!;
  const value = column.values[row]!;
  return Number.isFinite(value) ? value : null;
}

/** Writes users.jsonl, items.csv and interactions.csv; loadDatasetFiles reads them back as an equal dataset. */
export function writeDatasetFiles(dataset: Dataset, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const { users, items, interactions } = dataset;
  const userColumns = Object.entries(users.columns);
  const lines = users.ids.map((id, r) => {
    const features: Record<string, RowValue | null> = {};
    for (const [name, column] of userColumns) features[name] = jsonFeature(column, r);
    return JSON.stringify({ user_id: id, features });
  });
  writeFileSync(join(dir, 'users.jsonl'), lines.length > 0 ? lines.join('\n') + '\n' : '');

  const category = items.columns.category ?? emptyColumn('categorical', items.ids.length);
  const createdAt = items.columns.created_at ?? emptyColumn('numeric', items.ids.length);
  if (category.kind !== 'categorical') throw new Error('items.csv: the category column must be categorical');
  if (createdAt.kind !== 'numeric') throw new Error('items.csv: the created_at column must be numeric (Unix ms)');
  const itemColumns = Object.entries(items.columns).filter(([name]) => name !== 'category' && name !== 'created_at');
  if (itemColumns.some(([name]) => name === 'item_id')) throw new Error('items.csv: an item column may not be named item_id');
  const itemText = csvText('items.csv', ['item_id', 'category', 'created_at'], itemColumns, items.ids.length, (r) => [
    quote(items.ids[r]!),
    quote(category.values[r]!),
    Number.isNaN(createdAt.values[r]!) ? '' : String(createdAt.values[r]),
  ]);
  writeFileSync(join(dir, 'items.csv'), itemText);

  const contextColumns = Object.entries(interactions.context);
  const clash = contextColumns.find(([name]) => INTERACTION_COLUMNS.includes(name));
  if (clash !== undefined) throw new Error(`interactions.csv: a context column may not be named ${clash[0]}`);
  const interactionText = csvText('interactions.csv', INTERACTION_COLUMNS, contextColumns, interactions.length, (r) => [
    quote(users.ids[interactions.user[r]!]!),
    quote(items.ids[interactions.item[r]!]!),
    String(interactions.value[r]),
    String(interactions.timestamp[r]),
  ]);
  writeFileSync(join(dir, 'interactions.csv'), interactionText);
}
