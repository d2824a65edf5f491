import { common } from '@recsys/contracts';
import { UnavailableError } from '@recsys/service-kit';
import { DropSeenRule, type DropSeenOptions } from './drop-seen.js';
import { contextOf, entry, ids, NOW } from '../test-fixtures.js';

const { VIEW, CLICK, PURCHASE, IMPRESSION, UNSPECIFIED } = common.EventType;
const HOUR = 3600_000;

function rule(options: Partial<DropSeenOptions> = {}) {
  return new DropSeenRule({
    name: 'drop_seen',
    eventTypes: new Set([VIEW, CLICK, PURCHASE]),
    historyDepth: 10,
    withinMs: undefined,
    contextItems: true,
    onFailure: 'degrade',
    ...options,
  });
}

const list = () => ['a', 'b', 'c', 'd', 'e', 'f'].map((id, i) => entry(id, 1 - i / 10));
const seen = (itemId: string, eventType: common.EventType, ageMs = HOUR) => ({ itemId, eventType, timestampMs: NOW - ageMs });

describe('drop_seen', () => {
  it('drops items of the configured event types from the history and the request context', async () => {
    const context = contextOf({
      history: [seen('a', VIEW), seen('c', PURCHASE), seen('e', IMPRESSION)],
      recentItems: [
        { itemId: 'd', eventType: UNSPECIFIED },
        { itemId: 'f', eventType: IMPRESSION },
      ],
    });
    const result = await rule().apply(list(), context);
    // e was only an impression in the history, f only in the context: neither counts as seen.
    expect(ids(result.list)).toEqual(['b', 'e', 'f']);
    expect(result.error).toBeUndefined();
    expect(result.detail).toBe('dropped 3 seen items (3 history entries, 1 context items)');
  });

  it('reads only history_depth entries and, with within_hours, only recent events', async () => {
    const history = [seen('a', VIEW), seen('b', CLICK, 50 * HOUR), seen('c', VIEW)];
    expect(ids((await rule({ historyDepth: 2 }).apply(list(), contextOf({ history }))).list)).toEqual(['c', 'd', 'e', 'f']);
    expect(ids((await rule({ withinMs: 24 * HOUR }).apply(list(), contextOf({ history }))).list)).toEqual(['b', 'd', 'e', 'f']);
  });

  it('ignores the context when context_items is off', async () => {
    const context = contextOf({ recentItems: [{ itemId: 'a', eventType: VIEW }] });
    expect(ids((await rule({ contextItems: false }).apply(list(), context)).list)).toEqual(ids(list()));
  });

  it('keeps an empty list empty and a list without seen items whole', async () => {
    expect((await rule().apply([], contextOf({ history: [seen('a', VIEW)] }))).list).toEqual([]);
    expect(ids((await rule().apply(list(), contextOf({ history: [seen('zz', VIEW)] }))).list)).toEqual(ids(list()));
  });

  it('when the history cannot be read, still drops the context items and reports the failure', async () => {
    const context = contextOf({
      history: new Error('14 UNAVAILABLE: connection refused'),
      recentItems: [{ itemId: 'b', eventType: CLICK }],
    });
    const result = await rule().apply(list(), context);
    expect(ids(result.list)).toEqual(['a', 'c', 'd', 'e', 'f']);
    expect(result.error).toBe(
      "reading the user history failed: 14 UNAVAILABLE: connection refused; only the request context's items were dropped",
    );
    expect(result.detail).toContain('no history');
  });

  it('fails the call with UNAVAILABLE when configured so', async () => {
    const context = contextOf({ history: new Error('deadline exceeded') });
    await expect(rule({ onFailure: 'unavailable' }).apply(list(), context)).rejects.toThrow(UnavailableError);
    await expect(rule({ onFailure: 'unavailable' }).apply(list(), context)).rejects.toThrow(
      'drop_seen: reading the user history failed: deadline exceeded',
    );
  });
});
