import { readFailure, type Entry, type ItemInfo, type Rule, type RuleContext, type RuleResult } from './rule.js';
import { z } from 'zod';
import { defineRule, finite, HOUR_MS, intAtLeast, type Named, positive, ruleName, says } from './definition.js';

export interface BoostNewOptions {
  name: string;
  /** Items younger than this are new; an unknown creation time is never new. */
  maxAgeMs: number;
  /** New score = score × multiply + add. */
  multiply: number;
  add: number;
  /** At least `count` new items among the first `withinTop` (as many as there are). */
  guarantee: { count: number; withinTop: number } | undefined;
}

/**
 * Exposure for new items: their score is boosted and they move to where the boosted score belongs
 * (the other items keep their order); then, when configured, the best new items below the top K are
 * promoted into it, displacing its last non-new items.
 */
export class BoostNewRule implements Rule {
  readonly type = 'boost_new' as const;
  readonly name: string;

  constructor(private readonly options: BoostNewOptions) {
    this.name = options.name;
  }

  /** Items are read only for candidates that came without a creation time (ranking sets it; its fallbacks may not). */
  needs(list: readonly Entry[]) {
    return { items: list.some((entry) => entry.createdAtMs <= 0) };
  }

  async apply(list: Entry[], context: RuleContext): Promise<RuleResult> {
    if (list.some((entry) => entry.createdAtMs <= 0)) {
      let items: ReadonlyMap<string, ItemInfo>;
      try {
        items = await context.items();
      } catch (failure) {
        return { list, detail: 'no change: item ages unknown', error: readFailure('reading item features', failure) };
      }
      for (const entry of list) if (entry.createdAtMs <= 0) entry.createdAtMs = items.get(entry.itemId)?.createdAtMs ?? 0;
    }
    const { maxAgeMs, multiply, add, guarantee } = this.options;
    const fresh = new Set<Entry>();
    for (const entry of list) {
      if (entry.createdAtMs > 0 && context.nowMs - entry.createdAtMs < maxAgeMs) fresh.add(entry);
    }
    const notes = [`${fresh.size} new items`];
    let result = list;
    if (fresh.size > 0 && (multiply !== 1 || add !== 0)) {
      for (const entry of fresh) entry.score = entry.score * multiply + add;
      result = mergeByScore(list, fresh);
      notes.push(`scores ×${multiply} +${add}`);
    }
    if (guarantee && fresh.size > 0) {
      const promoted = promoteInto(result, fresh, guarantee.count, guarantee.withinTop);
      result = promoted.list;
      if (promoted.count > 0) notes.push(`${promoted.count} promoted into the top ${guarantee.withinTop}`);
    }
    return { list: result, detail: notes.join(', ') };
  }
}

/** The boosted items merged back into the others by score; the others keep their relative order, ties keep the old order. */
function mergeByScore(list: readonly Entry[], boosted: ReadonlySet<Entry>): Entry[] {
  const position = new Map(list.map((entry, i) => [entry, i]));
  const others = list.filter((entry) => !boosted.has(entry));
  const moved = list.filter((entry) => boosted.has(entry));
  const merged: Entry[] = [];
  let i = 0;
  let j = 0;
  while (i < others.length || j < moved.length) {
    const other = others[i];
    const candidate = moved[j];
    const takeMoved =
      candidate !== undefined &&
      (other === undefined ||
        candidate.score > other.score ||
        (candidate.score === other.score && position.get(candidate)! < position.get(other)!));
    merged.push(takeMoved ? candidate : other!);
    if (takeMoved) j++;
    else i++;
  }
  return merged;
}

/** Moves the first new items below the top `withinTop` into it, so it holds at least `count` of them. */
function promoteInto(list: Entry[], fresh: ReadonlySet<Entry>, count: number, withinTop: number): { list: Entry[]; count: number } {
  const top = Math.min(withinTop, list.length);
  const head = list.slice(0, top);
  const tail = list.slice(top);
  const missing = count - head.filter((entry) => fresh.has(entry)).length;
  const promoted = missing > 0 ? tail.filter((entry) => fresh.has(entry)).slice(0, missing) : [];
  if (promoted.length === 0) return { list, count: 0 };
  // The head's last non-new items make room; they lead what follows the head.
  const displaced = new Set<Entry>();
  for (let i = head.length - 1; i >= 0 && displaced.size < promoted.length; i--) {
    if (!fresh.has(head[i]!)) displaced.add(head[i]!);
  }
  const promotedSet = new Set(promoted);
  return {
    list: [
      ...head.filter((entry) => !displaced.has(entry)),
      ...promoted,
      ...head.filter((entry) => displaced.has(entry)),
      ...tail.filter((entry) => !promotedSet.has(entry)),
    ],
    count: promoted.length,
  };
}

const schema = z
  .object({
    rule: z.literal('boost_new'),
    name: ruleName.optional(),
    max_age_hours: positive,
    multiply: positive.default(1),
    add: finite.default(0),
    guarantee: z
      .object({ count: intAtLeast(1), within_top: intAtLeast(1) }, says('must be a mapping with count and within_top'))
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.guarantee && rule.guarantee.count > rule.guarantee.within_top) {
      ctx.addIssue({ code: 'custom', path: ['guarantee', 'count'], message: `must not exceed within_top (${rule.guarantee.within_top})` });
    }
    if (rule.multiply === 1 && rule.add === 0 && !rule.guarantee) {
      ctx.addIssue({ code: 'custom', path: [], message: 'does nothing: set multiply, add or guarantee' });
    }
  });

export type BoostNewConfig = Named<z.infer<typeof schema>>;

/** `boost_new` in a rules file. */
export const boostNewRule = defineRule({
  type: 'boost_new',
  schema,
  create: (rule) =>
    new BoostNewRule({
      name: rule.name,
      maxAgeMs: rule.max_age_hours * HOUR_MS,
      multiply: rule.multiply,
      add: rule.add,
      guarantee: rule.guarantee && { count: rule.guarantee.count, withinTop: rule.guarantee.within_top },
    }),
});
