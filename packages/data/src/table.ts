import { type Column, type EntityTable, type Interactions } from './types.js';

/** One row as a plain object: categorical → string, numeric → number, multi → string[]. */
export type RowValue = string | number | string[];
export type Row = Record<string, RowValue>;

/** An EntityTable over `ids` and `columns`, checking that ids are unique and every column has one value per id. */
export function createTable(ids: string[], columns: Record<string, Column> = {}): EntityTable {
  const index = new Map<string, number>();
  for (let r = 0; r < ids.length; r++) {
    index.set(ids[r]!, r);
    // One lookup per id: a repeated id leaves the size behind.
    if (index.size !== r + 1) throw new Error(`duplicate id "${ids[r]}" (rows ${ids.indexOf(ids[r]!)} and ${r})`);
  }
  for (const [name, column] of Object.entries(columns)) {
    if (column.values.length !== ids.length) {
      throw new Error(`column "${name}" has ${column.values.length} values for ${ids.length} ids`);
    }
  }
  return { ids, index, columns };
}

function kindOf(value: RowValue): Column['kind'] | undefined {
  if (typeof value === 'string') return 'categorical';
  if (typeof value === 'number') return 'numeric';
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return 'multi';
  return undefined;
}

/** Infers each column's kind from its values (string, number, string[]); a row without a column gets the missing value. */
export function tableFromRows(ids: string[], rows: readonly Partial<Row>[]): EntityTable {
  if (ids.length !== rows.length) throw new Error(`tableFromRows: ${ids.length} ids for ${rows.length} rows`);
  const kinds = new Map<string, Column['kind']>();
  for (let r = 0; r < rows.length; r++) {
    for (const [name, value] of Object.entries(rows[r]!)) {
      if (value === undefined) continue;
      const kind = kindOf(value);
      if (kind === undefined) throw new Error(`column "${name}": unsupported value ${JSON.stringify(value)} in row ${r} (id ${ids[r]})`);
      const seen = kinds.get(name);
      if (seen === undefined) kinds.set(name, kind);
      else if (seen !== kind) throw new Error(`column "${name}" mixes ${seen} and ${kind} values (row ${r}, id ${ids[r]})`);
    }
  }
  const columns: Record<string, Column> = {};
  for (const [name, kind] of kinds) {
    if (kind === 'numeric') {
      const values = new Float64Array(rows.length).fill(NaN);
      for (let r = 0; r < rows.length; r++) {
        const value = rows[r]![name];
        if (value !== undefined) values[r] = value as number;
      }
      columns[name] = { kind, values };
    } else if (kind === 'categorical') {
      columns[name] = { kind, values: rows.map((row) => (row[name] as string | undefined) ?? '') };
    } else {
      columns[name] = { kind, values: rows.map((row) => [...((row[name] as string[] | undefined) ?? [])]) };
    }
  }
  return createTable(ids, columns);
}

/** Reads one row back as an object, by id (a string) or by row index (a number). */
export function tableRow(table: EntityTable, idOrIndex: string | number): Row {
  const row = typeof idOrIndex === 'number' ? idOrIndex : table.index.get(idOrIndex);
  if (row === undefined) throw new Error(`no row with id "${idOrIndex}"`);
  if (!Number.isInteger(row) || row < 0 || row >= table.ids.length) {
    throw new Error(`row index ${row} is out of range (0..${table.ids.length - 1})`);
  }
  const out: Row = {};
  for (const [name, column] of Object.entries(table.columns)) {
    out[name] = column.kind === 'multi' ? [...column.values[row]!] : column.values[row]!;
  }
  return out;
}

/** The same table with `columns` added (or replaced); the input is left as it is. */
export function withColumns(table: EntityTable, columns: Record<string, Column>): EntityTable {
  for (const [name, column] of Object.entries(columns)) {
    if (column.values.length !== table.ids.length) {
      throw new Error(`column "${name}" has ${column.values.length} values for ${table.ids.length} ids`);
    }
  }
  return { ids: table.ids, index: table.index, columns: { ...table.columns, ...columns } };
}

/** An interaction log of n zeroed rows (or the given users) without context columns, for loaders to fill. */
export function createInteractions(n: number, user = new Int32Array(n)): Interactions {
  return {
    length: n,
    user,
    item: new Int32Array(n),
    value: new Float32Array(n),
    timestamp: new Float64Array(n),
    context: {},
  };
}
