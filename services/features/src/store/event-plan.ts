import type { common } from '@recsys/contracts';
import type { FeatureStoreOptions } from './feature-store.js';
import { encodeHistoryEntry } from './history-codec.js';
import { logDecayedWeight } from './popularity-decay.js';

/** What one feedback event does to a store if its id is new; computed alike for both stores. */
export interface PlannedEvent {
  eventId: string;
  userId: string;
  itemId: string;
  /** The encoded history entry; undefined when the event type does not enter history. */
  historyEntry: Buffer | undefined;
  /** log2 of the event's decayed popularity weight; undefined when it adds none. */
  logWeight: number | undefined;
}

/**
 * Plans a batch in the order it must be applied: oldest first (stable for equal times), so the
 * newest event ends up at the head of the history whatever order the client sent the batch in.
 * A timestamp of 0 (or below) means "when the service receives it", i.e. `nowMs`. Events for `unknownItems` enter the
 * history but add no popularity.
 */
export function planEvents(
  events: readonly common.FeedbackEvent[],
  options: FeatureStoreOptions,
  nowMs: number,
  unknownItems?: ReadonlySet<string>,
): PlannedEvent[] {
  const now = BigInt(Math.trunc(nowMs));
  const timed = events.map((event) => ({ event, timestampMs: event.timestampMs > 0n ? event.timestampMs : now }));
  timed.sort((a, b) => (a.timestampMs < b.timestampMs ? -1 : a.timestampMs > b.timestampMs ? 1 : 0));
  const keepsHistory = options.historyCap > 0;
  return timed.map(({ event, timestampMs }) => ({
    eventId: event.eventId,
    userId: event.userId,
    itemId: event.itemId,
    historyEntry:
      keepsHistory && options.historyEventTypes.has(event.eventType)
        ? encodeHistoryEntry(event.itemId, timestampMs, event.dwellSeconds, event.eventType)
        : undefined,
    // An item the catalogue does not hold adds no popularity: the popular list is served as recommendations.
    logWeight: unknownItems?.has(event.itemId)
      ? undefined
      : logDecayedWeight(options.eventWeights[event.eventType] ?? 0, Number(timestampMs), options.popularityHalfLifeMs, nowMs),
  }));
}
