import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry, ItemInfo, RecentItem, RuleContext, SeenEvent } from './rules/rule.js';

/** Test inputs for rule specs: candidate entries and a request context over given data. */
export function entry(itemId: string, score: number, category = '', createdAtMs = 0): Entry {
  return { itemId, score, category, createdAtMs, channels: ['two_tower'], stageScores: [] };
}

export const ids = (list: readonly Entry[]) => list.map((e) => e.itemId);

export interface ContextData {
  userId?: string;
  nowMs?: number;
  limit?: number;
  recentItems?: RecentItem[];
  removed?: Iterable<string>;
  /** An Error makes the read reject. */
  history?: SeenEvent[] | Error;
  items?: Record<string, Partial<ItemInfo>> | Error;
}

export const NOW = Date.UTC(2026, 5, 15, 12);

export function contextOf(data: ContextData = {}): RuleContext & { reads: { history: number; items: number } } {
  const reads = { history: 0, items: 0 };
  const { history = [], items = {} } = data;
  return {
    userId: data.userId ?? 'u1',
    nowMs: data.nowMs ?? NOW,
    limit: data.limit ?? 100,
    recentItems: data.recentItems ?? [],
    removed: new Set(data.removed ?? []),
    reads,
    history: async () => {
      reads.history++;
      if (history instanceof Error) throw history;
      return history;
    },
    items: async () => {
      reads.items++;
      if (items instanceof Error) throw items;
      return new Map(Object.entries(items).map(([id, info]) => [id, { category: '', createdAtMs: 0, ...info }]));
    },
  };
}

/** A two-tower version directory as the trainer writes it: manifest.json, item-vectors.f32, item-ids.txt. */
export function writeItemVectors(ids: string[], rows: number[][], patch: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'recsys-vectors-'));
  const dim = rows[0]!.length;
  const bytes = Buffer.alloc(rows.length * dim * 4);
  rows.flat().forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  writeFileSync(join(dir, 'item-vectors.f32'), bytes);
  writeFileSync(join(dir, 'item-ids.txt'), `${ids.join('\n')}\n`);
  const itemVectors = {
    file: 'item-vectors.f32',
    idsFile: 'item-ids.txt',
    count: ids.length,
    dim,
    dtype: 'float32',
    sha256: createHash('sha256').update(bytes).digest('hex'),
    ...patch,
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ format: 'recsys.model.v1', name: 'two-tower', itemVectors }));
  return dir;
}
