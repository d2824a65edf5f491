import { common } from '@recsys/contracts';
import { UnavailableError } from '@recsys/service-kit';
import { readFailure, type Entry, type Rule, type RuleContext, type RuleResult } from './rule.js';
import { defineRule, HOUR_MS, intAtLeast, type Named, positive, ruleName, says } from './definition.js';
import { z } from 'zod';

export interface DropSeenOptions {
  name: string;
  /** History and context events that make an item "seen". */
  eventTypes: ReadonlySet<common.EventType>;
  /** How many history entries to read. */
  historyDepth: number;
  /** Only events this recent count; undefined: any age. */
  withinMs: number | undefined;
  /** Also drop the request context's recent items. */
  contextItems: boolean;
  /** What a failed history read does: drop what is known and report it, or fail the call with UNAVAILABLE. */
  onFailure: 'degrade' | 'unavailable';
}

/** Drops items the user has seen or bought: the stored history plus the request's recent items. */
export class DropSeenRule implements Rule {
  readonly type = 'drop_seen' as const;
  readonly name: string;

  constructor(private readonly options: DropSeenOptions) {
    this.name = options.name;
  }

  needs() {
    return { historyDepth: this.options.historyDepth };
  }

  async apply(list: Entry[], context: RuleContext): Promise<RuleResult> {
    const { eventTypes, historyDepth, withinMs } = this.options;
    const seen = new Set<string>();
    if (this.options.contextItems) {
      // A recent item the client sent without an event type is something the user just had in front of them.
      for (const item of context.recentItems) {
        if (item.eventType === common.EventType.UNSPECIFIED || eventTypes.has(item.eventType)) seen.add(item.itemId);
      }
    }
    const fromContext = seen.size;
    let error: string | undefined;
    let historyNote: string;
    try {
      const history = await context.history();
      const depth = Math.min(historyDepth, history.length);
      for (let i = 0; i < depth; i++) {
        const event = history[i]!;
        if (!eventTypes.has(event.eventType)) continue;
        if (withinMs !== undefined && event.timestampMs > 0 && context.nowMs - event.timestampMs > withinMs) continue;
        seen.add(event.itemId);
      }
      historyNote = `${depth} history entries`;
    } catch (failure) {
      const message = readFailure('reading the user history', failure);
      if (this.options.onFailure === 'unavailable') throw new UnavailableError(`${this.name}: ${message}`, { cause: failure });
      error = `${message}; only the request context's items were dropped`;
      historyNote = 'no history';
    }
    const kept = list.filter((entry) => !seen.has(entry.itemId));
    const detail = `dropped ${list.length - kept.length} seen items (${historyNote}, ${fromContext} context items)`;
    return error === undefined ? { list: kept, detail } : { list: kept, detail, error };
  }
}

const EVENT_TYPE_NAMES = ['impression', 'view', 'click', 'add_to_cart', 'purchase', 'like', 'dislike'] as const;
export type EventTypeName = (typeof EVENT_TYPE_NAMES)[number];

const schema = z
  .object({
    rule: z.literal('drop_seen'),
    name: ruleName.optional(),
    event_types: z
      .array(z.enum(EVENT_TYPE_NAMES, says(`must be one of ${EVENT_TYPE_NAMES.join(', ')}`)), says('must be a list of event types'))
      .min(1, says('must name at least one event type'))
      .default(['view', 'click', 'add_to_cart', 'purchase']),
    history_depth: intAtLeast(1, 10000).default(100),
    within_hours: positive.optional(),
    context_items: z.boolean(says('must be true or false')).default(true),
    on_failure: z.enum(['degrade', 'unavailable'], says('must be degrade or unavailable')).default('degrade'),
  })
  .strict();

export type DropSeenConfig = Named<z.infer<typeof schema>>;

/** `drop_seen` in a rules file. */
export const dropSeenRule = defineRule({
  type: 'drop_seen',
  schema,
  create: (rule) =>
    new DropSeenRule({
      name: rule.name,
      eventTypes: new Set(rule.event_types.map(eventTypeOf)),
      historyDepth: rule.history_depth,
      withinMs: rule.within_hours === undefined ? undefined : rule.within_hours * HOUR_MS,
      contextItems: rule.context_items,
      onFailure: rule.on_failure,
    }),
});

function eventTypeOf(name: EventTypeName): common.EventType {
  return (common.EventType as unknown as Record<string, common.EventType>)[name.toUpperCase()]!;
}
