import { readFailure, type Entry, type Rule, type RuleContext, type RuleResult } from './rule.js';
import { z } from 'zod';
import { category, defineRule, itemId, type Named, ruleName, says } from './definition.js';

export interface BlockOptions {
  name: string;
  itemIds: ReadonlySet<string>;
  categories: ReadonlySet<string>;
}

/** Items and categories never shown. */
export class BlockRule implements Rule {
  readonly type = 'block' as const;
  readonly name: string;

  constructor(private readonly options: BlockOptions) {
    this.name = options.name;
  }

  needs(list: readonly Entry[]) {
    return { items: this.options.categories.size > 0 && list.some((entry) => entry.category === '') };
  }

  async apply(list: Entry[], context: RuleContext): Promise<RuleResult> {
    const { itemIds, categories } = this.options;
    let error: string | undefined;
    if (categories.size > 0 && list.some((entry) => entry.category === '')) {
      try {
        const items = await context.items();
        for (const entry of list) if (entry.category === '') entry.category = items.get(entry.itemId)?.category ?? '';
      } catch (failure) {
        error = `${readFailure('reading item categories', failure)}; items without a category were only checked by id`;
      }
    }
    let byId = 0;
    let byCategory = 0;
    const kept = list.filter((entry) => {
      if (itemIds.has(entry.itemId)) byId++;
      else if (entry.category !== '' && categories.has(entry.category)) byCategory++;
      else return true;
      return false;
    });
    const detail = `blocked ${byId + byCategory} items (${byId} by id, ${byCategory} by category)`;
    return error === undefined ? { list: kept, detail } : { list: kept, detail, error };
  }
}

const schema = z
  .object({
    rule: z.literal('block'),
    name: ruleName.optional(),
    item_ids: z.array(itemId, says('must be a list of item ids')).default([]),
    categories: z.array(category, says('must be a list of categories')).default([]),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.item_ids.length === 0 && rule.categories.length === 0) {
      ctx.addIssue({ code: 'custom', path: [], message: 'does nothing: list item_ids or categories' });
    }
  });

export type BlockConfig = Named<z.infer<typeof schema>>;

/** `block` in a rules file. */
export const blockRule = defineRule({
  type: 'block',
  schema,
  create: (rule) => new BlockRule({ name: rule.name, itemIds: new Set(rule.item_ids), categories: new Set(rule.categories) }),
});
