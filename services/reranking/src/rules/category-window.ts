import { readFailure, type Entry, type Rule, type RuleContext, type RuleResult } from './rule.js';
import { z } from 'zod';
import { defineRule, intAtLeast, type Named, ruleName } from './definition.js';

export interface CategoryWindowOptions {
  name: string;
  window: number;
  maxPerCategory: number;
}

/**
 * At most M items of one category in every W consecutive results, built greedily: each position
 * takes the first remaining item (in the current order) that fits. When none fits, the answer is
 * not cut short: the first item of the least represented category in the window is taken anyway
 * (a relaxation, counted in the detail). Items of unknown category are never limited.
 */
export class CategoryWindowRule implements Rule {
  readonly type = 'diversity' as const;
  readonly name: string;

  constructor(private readonly options: CategoryWindowOptions) {
    this.name = options.name;
  }

  needs(list: readonly Entry[]) {
    return { items: list.some((entry) => entry.category === '') };
  }

  async apply(list: Entry[], context: RuleContext): Promise<RuleResult> {
    let error: string | undefined;
    if (list.some((entry) => entry.category === '')) {
      try {
        const items = await context.items();
        for (const entry of list) if (entry.category === '') entry.category = items.get(entry.itemId)?.category ?? '';
      } catch (failure) {
        error = `${readFailure('reading item categories', failure)}; items without a category were not limited`;
      }
    }
    const { window, maxPerCategory } = this.options;
    const { arranged, relaxed } = arrangeByCategoryWindow(list, window, maxPerCategory);
    const notes = [`at most ${maxPerCategory} per category in ${window}`];
    if (relaxed > 0) notes.push(`relaxed at ${relaxed} positions (too few categories left)`);
    return error === undefined ? { list: arranged, detail: notes.join('; ') } : { list: arranged, detail: notes.join('; '), error };
  }
}

export function arrangeByCategoryWindow(
  list: readonly Entry[],
  window: number,
  maxPerCategory: number,
): { arranged: Entry[]; relaxed: number } {
  const remaining = list.slice();
  const arranged: Entry[] = [];
  // How many of each category the last window − 1 placed items hold.
  const inWindow = new Map<string, number>();
  const countOf = (category: string) => (category === '' ? 0 : (inWindow.get(category) ?? 0));
  let relaxed = 0;
  while (remaining.length > 0) {
    let pick = remaining.findIndex((entry) => countOf(entry.category) < maxPerCategory);
    if (pick < 0) {
      relaxed++;
      pick = 0;
      for (let i = 1; i < remaining.length; i++) if (countOf(remaining[i]!.category) < countOf(remaining[pick]!.category)) pick = i;
    }
    const [entry] = remaining.splice(pick, 1) as [Entry];
    arranged.push(entry);
    if (entry.category !== '') inWindow.set(entry.category, countOf(entry.category) + 1);
    if (arranged.length >= window) {
      const leaving = arranged[arranged.length - window]!.category;
      if (leaving !== '') inWindow.set(leaving, countOf(leaving) - 1);
    }
  }
  return { arranged, relaxed };
}

const schema = z
  .object({
    rule: z.literal('diversity'),
    name: ruleName.optional(),
    kind: z.literal('category_window'),
    window: intAtLeast(2, 1000),
    max_per_category: intAtLeast(1),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.max_per_category >= rule.window) {
      ctx.addIssue({
        code: 'custom',
        path: ['max_per_category'],
        message: `must be less than window (${rule.window}), or the rule does nothing`,
      });
    }
  });

export type CategoryWindowConfig = Named<z.infer<typeof schema>>;

/** `diversity` with `kind: category_window` in a rules file. */
export const categoryWindowRule = defineRule({
  type: 'diversity',
  kind: 'category_window',
  schema,
  create: (rule) => new CategoryWindowRule({ name: rule.name, window: rule.window, maxPerCategory: rule.max_per_category }),
});
