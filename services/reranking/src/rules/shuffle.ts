import type { Entry, Rule, RuleContext, RuleResult } from './rule.js';
import { z } from 'zod';
import { defineRule, type Named, positive, ruleName, says } from './definition.js';

export interface ShuffleOptions {
  name: string;
  epsilon: number;
  /** Epsilon is a fraction of the group's first score instead of an absolute difference. */
  relative: boolean;
}

/**
 * Deterministic shuffle within near-equal scores. A group is a run of consecutive items whose scores
 * differ from the run's first by less than epsilon, so no item crosses a larger gap. Within a group
 * items are ordered by a hash of (user, UTC day, item): the same user sees the same order all day,
 * whatever else the list holds, and different users or days differ.
 */
export class ShuffleRule implements Rule {
  readonly type = 'shuffle' as const;
  readonly name: string;

  constructor(private readonly options: ShuffleOptions) {
    this.name = options.name;
  }

  needs() {
    return {};
  }

  apply(list: Entry[], context: RuleContext): RuleResult {
    const seed = `${context.userId}|${utcDay(context.nowMs)}|`;
    const { list: shuffled, groups } = shuffleNearEqual(list, this.options.epsilon, this.options.relative, seed);
    return { list: shuffled, detail: `${groups} groups of near-equal scores shuffled (seed day ${utcDay(context.nowMs)})` };
  }
}

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function shuffleNearEqual(
  list: readonly Entry[],
  epsilon: number,
  relative: boolean,
  seed: string,
): { list: Entry[]; groups: number } {
  const result: Entry[] = [];
  let groups = 0;
  let start = 0;
  while (start < list.length) {
    const anchor = list[start]!.score;
    const tolerance = relative ? epsilon * Math.abs(anchor) : epsilon;
    let end = start + 1;
    while (end < list.length && Math.abs(list[end]!.score - anchor) < tolerance) end++;
    const group = list.slice(start, end);
    if (group.length > 1) {
      groups++;
      const keys = new Map(group.map((entry) => [entry, hash32(seed + entry.itemId)]));
      group.sort((a, b) => keys.get(a)! - keys.get(b)! || (a.itemId < b.itemId ? -1 : 1));
    }
    result.push(...group);
    start = end;
  }
  return { list: result, groups };
}

/** FNV-1a over UTF-16 code units with a murmur3 finaliser, so near-identical keys land far apart. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const schema = z
  .object({
    rule: z.literal('shuffle'),
    name: ruleName.optional(),
    epsilon: positive,
    relative: z.boolean(says('must be true or false')).default(false),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.relative && rule.epsilon >= 1) ctx.addIssue({ code: 'custom', path: ['epsilon'], message: 'must be below 1 when relative' });
  });

export type ShuffleConfig = Named<z.infer<typeof schema>>;

/** `shuffle` in a rules file. */
export const shuffleRule = defineRule({
  type: 'shuffle',
  schema,
  create: (rule) => new ShuffleRule({ name: rule.name, epsilon: rule.epsilon, relative: rule.relative }),
});
