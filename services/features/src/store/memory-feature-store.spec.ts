import { create } from '@bufbuild/protobuf';
import { common } from '@recsys/contracts';
import { MemoryFeatureStore } from './memory-feature-store.js';

const { EventType } = common;

function click(eventId: string, timestampMs: number): common.FeedbackEvent {
  return create(common.FeedbackEventSchema, {
    eventId,
    userId: 'u1',
    itemId: 'i1',
    eventType: EventType.CLICK,
    timestampMs: BigInt(timestampMs),
  });
}

describe('MemoryFeatureStore', () => {
  it('forgets event ids once their de-duplication window has passed, keeping memory bounded', async () => {
    let now = Date.now();
    const store = new MemoryFeatureStore({
      historyCap: 5,
      popularityHalfLifeMs: 3_600_000,
      dedupTtlMs: 1000,
      eventWeights: { [EventType.CLICK]: 1 },
      historyEventTypes: new Set([EventType.CLICK]),
      eventLogRetentionMs: 3_600_000,
      attributionWindowMs: 3_600_000,
      clock: () => now,
    });

    await store.recordEvents([click('a', now), click('b', now)]);
    now += 600;
    await store.recordEvents([click('c', now)]);
    expect(store.rememberedEventIds).toBe(3);

    // At exactly the expiry an id is still known, as with a Redis key's PX.
    now += 400;
    await expect(store.recordEvents([click('a', now)])).resolves.toEqual({ accepted: 0, duplicates: 1 });

    now += 1;
    await expect(store.recordEvents([click('a', now)])).resolves.toEqual({ accepted: 1, duplicates: 0 });
    // b expired and was pruned; a was remembered again; c is still inside its window.
    expect(store.rememberedEventIds).toBe(2);

    now += 10_000;
    await store.recordEvents([]);
    expect(store.rememberedEventIds).toBe(0);
  });

  it('refuses options it cannot work with', () => {
    const valid = {
      historyCap: 5,
      popularityHalfLifeMs: 1000,
      dedupTtlMs: 1000,
      eventWeights: {},
      historyEventTypes: new Set<number>(),
      eventLogRetentionMs: 3_600_000,
      attributionWindowMs: 3_600_000,
    };
    expect(() => new MemoryFeatureStore({ ...valid, popularityHalfLifeMs: 0 })).toThrow(/popularityHalfLifeMs/);
    expect(() => new MemoryFeatureStore({ ...valid, historyCap: -1 })).toThrow(/historyCap/);
    expect(() => new MemoryFeatureStore({ ...valid, dedupTtlMs: 0 })).toThrow(/dedupTtlMs/);
    expect(() => new MemoryFeatureStore({ ...valid, eventWeights: { 3: Number.NaN } })).toThrow(/eventWeights\[3\]/);
    expect(() => new MemoryFeatureStore(valid)).not.toThrow();
  });
});
