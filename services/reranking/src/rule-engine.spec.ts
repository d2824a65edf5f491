import { create } from '@bufbuild/protobuf';
import { common, features as featuresPb } from '@recsys/contracts';
import { UnavailableError } from '@recsys/service-kit';
import { ListBefore, longestIncreasingRun, RuleEngine, type EngineRequest, type FeatureSource } from './rule-engine.js';
import { BlockRule } from './rules/block.js';
import { BoostNewRule } from './rules/boost-new.js';
import { CategoryWindowRule } from './rules/category-window.js';
import { DropSeenRule } from './rules/drop-seen.js';
import { PinRule } from './rules/pin.js';
import type { Entry, ItemInfo, Rule, SeenEvent } from './rules/rule.js';
import { entry, ids, NOW } from './test-fixtures.js';

const DAY = 86400_000;

/** Feature data held in memory; records every read, and fails them all when `down`. */
class MemoryFeatureSource implements FeatureSource {
  readonly reads: string[] = [];
  down = false;
  constructor(
    private readonly historyOf: Record<string, SeenEvent[]>,
    private readonly itemsById: Record<string, ItemInfo>,
  ) {}
  async history(userId: string, depth: number) {
    this.reads.push(`history(${userId}, ${depth})`);
    if (this.down) throw new Error('14 UNAVAILABLE: connection refused');
    return (this.historyOf[userId] ?? []).slice(0, depth);
  }
  async items(itemIds: readonly string[]) {
    this.reads.push(`items(${itemIds.join(',')})`);
    if (this.down) throw new Error('14 UNAVAILABLE: connection refused');
    return new Map(itemIds.filter((id) => this.itemsById[id]).map((id) => [id, this.itemsById[id]!]));
  }
}

const source = () =>
  new MemoryFeatureSource(
    { u1: [{ itemId: 'b', eventType: common.EventType.PURCHASE, timestampMs: NOW - DAY }] },
    {
      a: { category: 'x', createdAtMs: NOW - 100 * DAY },
      b: { category: 'x', createdAtMs: NOW - 100 * DAY },
      c: { category: 'x', createdAtMs: NOW - 100 * DAY },
      d: { category: 'y', createdAtMs: NOW - DAY },
      e: { category: 'x', createdAtMs: NOW - 100 * DAY },
      promo: { category: 'ads', createdAtMs: NOW - DAY },
    },
  );

const dropSeen = (onFailure: 'degrade' | 'unavailable' = 'degrade') =>
  new DropSeenRule({
    name: 'drop_seen',
    eventTypes: new Set([common.EventType.VIEW, common.EventType.PURCHASE]),
    historyDepth: 50,
    withinMs: undefined,
    contextItems: true,
    onFailure,
  });
const boost = new BoostNewRule({ name: 'boost_new', maxAgeMs: 7 * DAY, multiply: 1.2, add: 0, guarantee: undefined });
const diversity = new CategoryWindowRule({ name: 'spread', window: 2, maxPerCategory: 1 });
const block = new BlockRule({ name: 'block', itemIds: new Set(['e']), categories: new Set() });
const pin = new PinRule({ name: 'pin', pins: [{ itemId: 'promo', position: 1, insert: true }] });

const request = (overrides: Partial<EngineRequest> = {}): EngineRequest => ({
  userId: 'u1',
  nowMs: NOW,
  limit: 10,
  recentItems: [],
  candidates: ['a', 'b', 'c', 'd', 'e'].map((id, i) => entry(id, 0.5 - i / 10)),
  disabled: new Set(),
  ...overrides,
});

describe('RuleEngine', () => {
  it('applies the rules in order and reports what each removed and changed', async () => {
    const features = source();
    const runs: unknown[] = [];
    const engine = new RuleEngine([dropSeen(), block, boost, diversity, pin], features, {
      ruleRan: (...args) => runs.push(args),
    });
    const { list, reports } = await engine.run(request());
    expect(ids(list)).toEqual(['promo', 'a', 'd', 'c']);
    expect(reports.map(({ durationMs, ...r }) => (expect(durationMs).toBeGreaterThanOrEqual(0), r))).toEqual([
      {
        rule: 'drop_seen',
        removedItemIds: ['b'],
        changedItemIds: [],
        detail: 'dropped 1 seen items (1 history entries, 0 context items)',
        error: '',
      },
      { rule: 'block', removedItemIds: ['e'], changedItemIds: [], detail: 'blocked 1 items (1 by id, 0 by category)', error: '' },
      // d: 0.2 → 0.24, still behind c (0.3): its score changed, not its place.
      { rule: 'boost_new', removedItemIds: [], changedItemIds: ['d'], detail: '1 new items, scores ×1.2 +0', error: '' },
      // a and c are both x: d moves between them — one item moved, the others kept their relative order.
      { rule: 'spread', removedItemIds: [], changedItemIds: ['d'], detail: 'at most 1 per category in 2', error: '' },
      { rule: 'pin', removedItemIds: [], changedItemIds: ['promo'], detail: 'pinned 1 items (1 inserted)', error: '' },
    ]);
    expect(runs).toEqual([
      ['drop_seen', 1, 0, false],
      ['block', 1, 0, false],
      ['boost_new', 0, 1, false],
      ['spread', 0, 1, false],
      ['pin', 0, 1, false],
    ]);
  });

  it('reads the history and the items once per request, both before the first rule runs', async () => {
    const features = source();
    const order: string[] = [];
    const probe: Rule = {
      name: 'probe',
      type: 'shuffle',
      needs: () => ({}),
      apply: (list) => (order.push(`probe after ${features.reads.length} reads`), { list, detail: '' }),
    };
    await new RuleEngine([probe, dropSeen(), boost, diversity, pin], features).run(request());
    expect(order).toEqual(['probe after 2 reads']);
    expect(features.reads).toEqual(['history(u1, 50)', 'items(a,b,c,d,e,promo)']);
  });

  it('reads no history or item when the request carries the user deep enough and candidates carry their creation times', async () => {
    const features = source();
    const engine = new RuleEngine([dropSeen(), boost], features);
    const userState = create(featuresPb.GetUserFeaturesResponseSchema, {
      found: true,
      user: { userId: 'u1' },
      history: [{ itemId: 'c', eventType: common.EventType.VIEW, timestampMs: BigInt(NOW - DAY) }],
    });
    const carried = ['a', 'b', 'c', 'd'].map((id, i) => entry(id, 0.5 - i / 10, 'x', id === 'd' ? NOW - DAY : NOW - 100 * DAY));
    const { list } = await engine.run(request({ candidates: carried, passedUser: { userState, userHistoryLimit: 50 } }));
    // The passed history (c seen), not the stored one (b bought), decided what was dropped: no read was made.
    expect(ids(list)).toEqual(['a', 'b', 'd']);
    expect(features.reads).toEqual([]);
    // Read shallower than drop_seen's depth: the engine reads the history itself.
    await engine.run(request({ candidates: carried, passedUser: { userState, userHistoryLimit: 10 } }));
    expect(features.reads).toEqual(['history(u1, 50)']);
    // Another user's state is the caller's error.
    await expect(
      engine.run(
        request({ passedUser: { userState: { ...userState, user: { ...userState.user!, userId: 'u2' } }, userHistoryLimit: 50 } }),
      ),
    ).rejects.toThrow('user_state.user.user_id');
  });

  it('reads nothing for rules that need nothing, and nothing for disabled rules', async () => {
    const features = source();
    const engine = new RuleEngine([dropSeen(), boost, block], features);
    const { list, reports } = await engine.run(request({ disabled: new Set(['drop_seen', 'boost_new']) }));
    expect(ids(list)).toEqual(['a', 'b', 'c', 'd']);
    expect(features.reads).toEqual([]);
    expect(reports.slice(0, 2)).toEqual([
      { rule: 'drop_seen', removedItemIds: [], changedItemIds: [], detail: 'skipped', durationMs: 0, error: 'disabled by the request' },
      { rule: 'boost_new', removedItemIds: [], changedItemIds: [], detail: 'skipped', durationMs: 0, error: 'disabled by the request' },
    ]);
    // A rule type disables every rule of that type.
    const byType = await new RuleEngine([diversity], source()).run(request({ disabled: new Set(['diversity']) }));
    expect(byType.reports[0]!.error).toBe('disabled by the request');
    expect(engine.isKnownName('block')).toBe(true);
    expect(engine.isKnownName('pin')).toBe(true);
    expect(engine.isKnownName('spread')).toBe(false);
    expect(new RuleEngine([diversity], source()).isKnownName('spread')).toBe(true);
  });

  it('with the feature service down, still drops the context items and reports every degraded rule', async () => {
    const features = source();
    features.down = true;
    const failures: string[] = [];
    const engine = new RuleEngine([dropSeen(), boost, diversity], features, {
      ruleRan: (rule, _removed, _changed, failed) => failed && failures.push(rule),
    });
    const { list, reports } = await engine.run(request({ recentItems: [{ itemId: 'a', eventType: common.EventType.VIEW }] }));
    expect(ids(list)).toEqual(['b', 'c', 'd', 'e']);
    expect(reports[0]).toMatchObject({ rule: 'drop_seen', removedItemIds: ['a'] });
    expect(reports[0]!.error).toContain('reading the user history failed: 14 UNAVAILABLE: connection refused');
    expect(reports[1]!.error).toContain('reading item features failed');
    expect(reports[2]!.error).toContain('reading item categories failed');
    expect(failures).toEqual(['drop_seen', 'boost_new', 'spread']);
    // Configured to, drop_seen fails the whole call instead.
    await expect(new RuleEngine([dropSeen('unavailable')], features).run(request())).rejects.toThrow(UnavailableError);
  });

  it('skips a rule that throws, restoring the scores it changed, and reports it', async () => {
    const broken: Rule = {
      name: 'broken',
      type: 'shuffle',
      needs: () => ({}),
      apply: (list) => {
        list[0]!.score = 99;
        throw new TypeError('boom');
      },
    };
    const { list, reports } = await new RuleEngine([broken, block], source()).run(request());
    expect(list.map((e) => e.score)).toEqual(
      request()
        .candidates.slice(0, 4)
        .map((e) => e.score),
    );
    expect(reports[0]).toMatchObject({ rule: 'broken', removedItemIds: [], changedItemIds: [], error: 'rule failed: boom' });
    expect(reports[1]).toMatchObject({ rule: 'block', removedItemIds: ['e'] });
  });
});

describe('ListBefore.compare', () => {
  const make = (spec: string) => spec.split('').map((id) => entry(id, 1));
  const compare = (before: Entry[], order: string, edit?: (byId: Map<string, Entry>) => void) => {
    const snapshot = new ListBefore(before);
    const byId = new Map(before.map((e) => [e.itemId, e]));
    edit?.(byId);
    const after = order.split('').map((id) => byId.get(id) ?? entry(id, 0));
    return snapshot.compare(after);
  };
  const changed = (before: Entry[], order: string, edit?: (byId: Map<string, Entry>) => void) =>
    compare(before, order, edit).changedItemIds;

  it('reports moved items, not the ones they jumped over; removals change nothing; inserts and new scores do', () => {
    expect(changed(make('abcdef'), 'eabcdf')).toEqual(['e']);
    expect(changed(make('abcdef'), 'acdf')).toEqual([]);
    expect(changed(make('abcdef'), 'fedcba')).toHaveLength(5);
    expect(changed(make('abc'), 'axbc')).toEqual(['x']);
    expect(changed(make('abc'), 'abc', (m) => (m.get('b')!.score = 2))).toEqual(['b']);
    expect(changed([], '')).toEqual([]);
    expect(changed(make('abcdef'), 'bcaefd')).toEqual(['a', 'd']);
  });

  it('reports removed ids in their old order', () => {
    expect(compare(make('abcdef'), 'fca').removedItemIds).toEqual(['b', 'd', 'e']);
    expect(compare(make('abc'), 'abc').removedItemIds).toEqual([]);
  });

  it('restores the scores a list had', () => {
    const list = make('abc');
    const snapshot = new ListBefore(list);
    list[1]!.score = 7;
    snapshot.restoreScores();
    expect(list.map((e) => e.score)).toEqual([1, 1, 1]);
  });

  it('finds a longest increasing run', () => {
    const marked = (values: number[]) => [...longestIncreasingRun(values).entries()].filter(([, m]) => m === 1).map(([i]) => i);
    expect(marked([3, 0, 1, 2, 9, 4])).toEqual([1, 2, 3, 5]);
    expect(marked([])).toEqual([]);
    expect(marked([5, 4, 3])).toHaveLength(1);
  });
});
