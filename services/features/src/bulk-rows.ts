import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { type common, features } from '@recsys/contracts';
import { timestampProblem } from '@recsys/service-kit';

/** What a loader reads: users or items. */
export type EntityKind = 'users' | 'items';

export type ParsedRow =
  { ok: true; line: number; value: features.User | features.Item } | { ok: false; line: number; id: string; reason: string };

type FeatureInit = MessageInitShape<typeof common.FeatureValueSchema>;

/** Columns with a meaning of their own; every other column is a feature. */
const ID_COLUMN: Record<EntityKind, string> = { users: 'user_id', items: 'item_id' };
const ITEM_COLUMNS = new Set(['category', 'created_at']);

/** A JSON value as a feature: string → categorical, number → numeric, string[] → multi, number[] → vector. */
function featureFromJson(name: string, value: unknown): FeatureInit | string {
  if (typeof value === 'string') return { kind: { case: 'categorical', value } };
  if (typeof value === 'number')
    return Number.isFinite(value) ? { kind: { case: 'numeric', value } } : `features.${name}: not a finite number`;
  if (typeof value === 'boolean') return { kind: { case: 'categorical', value: String(value) } };
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'string')) return { kind: { case: 'multi', value: { values: value } } };
    if (value.every((v) => typeof v === 'number' && Number.isFinite(v))) return { kind: { case: 'vector', value: { values: value } } };
    return `features.${name}: an array must hold only strings or only finite numbers`;
  }
  return `features.${name}: unsupported value ${JSON.stringify(value)?.slice(0, 40)}`;
}

/** A CSV cell as a feature, by the column's type suffix (`:num`, `:multi`, `:vec`, default categorical). */
function featureFromCell(name: string, type: string, cell: string): FeatureInit | string {
  switch (type) {
    case 'cat':
      return { kind: { case: 'categorical', value: cell } };
    case 'num': {
      const n = Number(cell);
      return Number.isFinite(n) && cell.trim() !== '' ? { kind: { case: 'numeric', value: n } } : `${name}: "${cell}" is not a number`;
    }
    case 'multi':
      return { kind: { case: 'multi', value: { values: cell.split('|').filter((v) => v !== '') } } };
    case 'vec': {
      const values = cell.split('|').map(Number);
      return values.every(Number.isFinite)
        ? { kind: { case: 'vector', value: { values } } }
        : `${name}: "${cell.slice(0, 40)}" is not a |-separated list of numbers`;
    }
    default:
      return `${name}: unknown column type "${type}" (use cat, num, multi or vec)`;
  }
}

/** created_at as Unix ms: a number of ms, or an ISO-8601 date; either must be a time a Date holds (timestampProblem). */
function parseCreatedAt(value: unknown): number | string {
  if (value === undefined || value === null || value === '') return 0;
  let ms: number;
  if (typeof value === 'number') ms = value;
  else if (typeof value !== 'string') return 'created_at: must be a number or a date string';
  else if (/^\d+$/.test(value)) ms = Number(value);
  else {
    ms = Date.parse(value);
    if (Number.isNaN(ms)) return `created_at: "${value.slice(0, 40)}" is neither Unix ms nor an ISO date`;
  }
  const problem = timestampProblem(ms);
  return problem ? `created_at: ${problem}` : ms;
}

function build(kind: EntityKind, id: string, category: string, createdAt: number, values: Record<string, FeatureInit>) {
  return kind === 'users'
    ? create(features.UserSchema, { userId: id, features: { values } })
    : create(features.ItemSchema, { itemId: id, category, createdAtMs: BigInt(createdAt), features: { values } });
}

/** One JSONL line: `{"user_id": …, "features": {…}}` or `{"item_id": …, "category": …, "created_at": …, "features": {…}}`. */
export function parseJsonRow(kind: EntityKind, text: string, line: number): ParsedRow {
  let row: unknown;
  try {
    row = JSON.parse(text);
  } catch (error) {
    return { ok: false, line, id: '', reason: `malformed JSON: ${(error as Error).message}` };
  }
  if (typeof row !== 'object' || row === null || Array.isArray(row))
    return { ok: false, line, id: '', reason: 'a row must be a JSON object' };
  const record = row as Record<string, unknown>;
  const id = record[ID_COLUMN[kind]];
  if (typeof id !== 'string' && typeof id !== 'number')
    return { ok: false, line, id: '', reason: `${ID_COLUMN[kind]}: missing (a string or number)` };
  const idText = String(id);
  const values: Record<string, FeatureInit> = {};
  const rawFeatures = record.features ?? {};
  if (typeof rawFeatures !== 'object' || rawFeatures === null || Array.isArray(rawFeatures)) {
    return { ok: false, line, id: idText, reason: 'features: must be an object' };
  }
  for (const [name, value] of Object.entries(rawFeatures)) {
    if (value === null) continue;
    const feature = featureFromJson(name, value);
    if (typeof feature === 'string') return { ok: false, line, id: idText, reason: feature };
    values[name] = feature;
  }
  const category = record.category ?? '';
  if (typeof category !== 'string') return { ok: false, line, id: idText, reason: 'category: must be a string' };
  const createdAt = parseCreatedAt(record.created_at);
  if (typeof createdAt === 'string') return { ok: false, line, id: idText, reason: createdAt };
  return { ok: true, line, value: build(kind, idText, category, createdAt, values) };
}

/** A CSV header, checked once: the id column must be there; `name:type` sets a feature's type. */
export function csvColumns(kind: EntityKind, header: readonly string[]): { name: string; type: string }[] {
  const columns = header.map((h) => {
    const [name = '', type = 'cat'] = h.trim().split(':');
    return { name, type };
  });
  if (!columns.some((c) => c.name === ID_COLUMN[kind])) {
    throw new Error(`the CSV header has no ${ID_COLUMN[kind]} column (header: ${header.join(',')})`);
  }
  return columns;
}

export function parseCsvRow(
  kind: EntityKind,
  columns: readonly { name: string; type: string }[],
  cells: readonly string[],
  line: number,
): ParsedRow {
  const idIndex = columns.findIndex((c) => c.name === ID_COLUMN[kind]);
  const id = cells[idIndex] ?? '';
  if (cells.length !== columns.length) {
    return { ok: false, line, id, reason: `expected ${columns.length} columns, got ${cells.length}` };
  }
  const values: Record<string, FeatureInit> = {};
  let category = '';
  let createdAt = 0;
  for (let c = 0; c < columns.length; c++) {
    const { name, type } = columns[c]!;
    const cell = cells[c]!;
    if (c === idIndex || cell === '') continue;
    if (kind === 'items' && ITEM_COLUMNS.has(name)) {
      if (name === 'category') category = cell;
      else {
        const parsed = parseCreatedAt(cell);
        if (typeof parsed === 'string') return { ok: false, line, id, reason: parsed };
        createdAt = parsed;
      }
      continue;
    }
    const feature = featureFromCell(name, type, cell);
    if (typeof feature === 'string') return { ok: false, line, id, reason: feature };
    values[name] = feature;
  }
  if (id === '') return { ok: false, line, id, reason: `${ID_COLUMN[kind]}: missing` };
  return { ok: true, line, value: build(kind, id, category, createdAt, values) };
}
