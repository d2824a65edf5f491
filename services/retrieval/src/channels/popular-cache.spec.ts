import { PopularItemsCache } from './popular-cache.js';
import type { PopularItemsReader, PopularItemsRequest } from './popular.js';

/** A popular-items source over a fixed ranking, recording each request; `fail` makes the next reads reject. */
function source(ids: string[]) {
  const requests: PopularItemsRequest[] = [];
  let version = 0;
  let fail = false;
  const reader: PopularItemsReader = {
    async getPopularItems(request) {
      requests.push(request);
      if (fail) throw new Error('14 UNAVAILABLE: down');
      const include = request.filter?.includeCategories ?? [];
      const exclude = new Set(request.filter?.excludeItemIds ?? []);
      const items = ids
        .filter((id) => include.length === 0 || include.includes(id[0]!))
        .filter((id) => !exclude.has(id))
        .slice(0, request.limit)
        .map((itemId, k) => ({ itemId: `${itemId}${version > 0 ? `@${version}` : ''}`, score: 100 - k }));
      return { items };
    },
  };
  return {
    reader,
    requests,
    bump: () => version++,
    failing: (value: boolean) => (fail = value),
  };
}

const IDS = ['a1', 'b1', 'a2', 'b2', 'a3', 'b3', 'a4', 'b4'];

describe('PopularItemsCache', () => {
  let clock = 0;
  const cache = (reader: PopularItemsReader, items = 6) =>
    new PopularItemsCache(reader, { refreshMs: 1000, items, maxFilters: 2, maxStaleMs: 10_000, now: () => clock });
  beforeEach(() => (clock = 0));

  it('answers from memory after the first read, dropping excluded ids locally', async () => {
    const s = source(IDS);
    const c = cache(s.reader);
    expect((await c.getPopularItems({ limit: 3 })).items.map((i) => i.itemId)).toEqual(['a1', 'b1', 'a2']);
    const answer = await c.getPopularItems({ limit: 3, filter: { excludeItemIds: ['b1'] } });
    expect(answer.items.map((i) => i.itemId)).toEqual(['a1', 'a2', 'b2']);
    expect(s.requests).toHaveLength(1);
    // The source was asked for the cache's size, not the caller's limit.
    expect(s.requests[0]!.limit).toBe(6);
    expect(c.counts).toEqual({ hits: 1, reads: 1 });
  });

  it('keeps one list per category filter, whatever the order the categories come in', async () => {
    const s = source(IDS);
    const c = cache(s.reader);
    expect((await c.getPopularItems({ limit: 2, filter: { includeCategories: ['a'] } })).items.map((i) => i.itemId)).toEqual(['a1', 'a2']);
    await c.getPopularItems({ limit: 2, filter: { includeCategories: ['a', 'b'] } });
    await c.getPopularItems({ limit: 2, filter: { includeCategories: ['b', 'a'] } });
    expect(s.requests).toHaveLength(2);
  });

  it('refreshes a list older than refreshMs in the background, serving the old one meanwhile (one read at a time)', async () => {
    const s = source(IDS);
    const c = cache(s.reader);
    await c.getPopularItems({ limit: 1 });
    s.bump();
    clock = 1500;
    // Stale: answered at once from memory, one refresh started.
    expect((await c.getPopularItems({ limit: 1 })).items[0]!.itemId).toBe('a1');
    await c.getPopularItems({ limit: 1 });
    expect(s.requests).toHaveLength(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect((await c.getPopularItems({ limit: 1 })).items[0]!.itemId).toBe('a1@1');
  });

  it('serves a stale list while refreshes fail, up to maxStaleMs; then the read fails with the source', async () => {
    const s = source(IDS);
    const c = cache(s.reader);
    await c.getPopularItems({ limit: 2 });
    s.failing(true);
    clock = 5000;
    expect((await c.getPopularItems({ limit: 2 })).items).toHaveLength(2);
    await new Promise((resolve) => setImmediate(resolve));
    clock = 10_001;
    await expect(c.getPopularItems({ limit: 2 })).rejects.toThrow('UNAVAILABLE');
    s.failing(false);
    expect((await c.getPopularItems({ limit: 2 })).items).toHaveLength(2);
  });

  it('reads through when a request needs more than the cache keeps, and bounds the filters kept', async () => {
    const s = source(IDS);
    const c = cache(s.reader, 4);
    expect((await c.getPopularItems({ limit: 3, filter: { excludeItemIds: ['a1', 'b1'] } })).items.map((i) => i.itemId)).toEqual([
      'a2',
      'b2',
      'a3',
    ]);
    expect(s.requests[0]!.limit).toBe(3);
    for (const category of ['a', 'b', 'c']) await c.getPopularItems({ limit: 1, filter: { includeCategories: [category] } });
    // Two filters kept: 'a' (least recently used) was dropped and is read again.
    await c.getPopularItems({ limit: 1, filter: { includeCategories: ['a'] } });
    expect(s.requests).toHaveLength(5);
  });
});
