import calculateSlot from 'cluster-key-slot';
import { clusterKeyLayout, hashTag, plainKeyLayout, stableHash } from './redis-keys.js';

describe('Redis key layouts', () => {
  it('keeps the plain layout of one Redis as it was', () => {
    const keys = plainKeyLayout('p:');
    expect([keys.user('u1'), keys.history('u1'), keys.item('i1'), keys.event('e1', 'u1'), keys.popularity('i1')]).toEqual([
      'p:u:u1',
      'p:h:u1',
      'p:i:i1',
      'p:e:e1',
      'p:pop',
    ]);
    expect(keys.popularityEvent('e1', 'i1')).toBeUndefined();
    expect(keys.popularityShards()).toEqual(['p:pop']);
  });

  it('hash-tags cluster keys so what one script touches shares a slot', () => {
    const keys = clusterKeyLayout('p:', { popularityShards: 16, itemBuckets: 64 });
    expect([keys.user('u1'), keys.history('u1'), keys.item('item-2'), keys.event('e{1}', 'u1')]).toEqual([
      'p:u:{u1}',
      'p:h:{u1}',
      'p:i:{i.25}:item-2',
      'p:e:{u1}:e{1}',
    ]);
    // An item's braces do not move it: its bucket's tag comes first.
    expect(calculateSlot(keys.item('{x}'))).toBe(calculateSlot(`{i.${stableHash('{x}') % 64}}`));
    expect(keys.popularity('item-2')).toBe('p:pop:{pop.9}');
    expect(keys.popularityEvent('e1', 'item-2')).toBe('p:pe:{pop.9}:e1');
    expect(keys.popularityShards()).toHaveLength(16);
    // 16 shards land on 16 different slots (so on every node of a cluster of up to 16 masters, roughly).
    expect(new Set(keys.popularityShards().map((k) => calculateSlot(k))).size).toBe(16);
  });

  it('escapes braces and backslashes one-to-one, never leaving a tag empty', () => {
    expect(hashTag('}x')).toBe('\\)x');
    expect(hashTag('a\\b')).toBe('a\\\\b');
    const ids = ['}', '\\)', '\\}', ')', '}}', '\\\\)', 'a}b', 'a\\)b'];
    const tags = ids.map(hashTag);
    expect(new Set(tags).size).toBe(ids.length);
    for (const tag of tags) expect(tag).not.toContain('}');
  });

  it('pins the shard and bucket hash (it is part of the stored layout)', () => {
    expect(['item-1', 'item-2', '}x', 'é'].map((id) => stableHash(id) % 16)).toEqual([0, 9, 0, 1]);
    expect(stableHash('item-1') % 1000).toBe(840);
    expect(() => clusterKeyLayout('', { popularityShards: 0, itemBuckets: 1 })).toThrow(
      'popularityShards must be an integer from 1 to 1024, got 0',
    );
    expect(() => clusterKeyLayout('', { popularityShards: 1, itemBuckets: 20000 })).toThrow(
      'itemBuckets must be an integer from 1 to 16384, got 20000',
    );
  });
});
