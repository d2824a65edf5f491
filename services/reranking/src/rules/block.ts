import { readFailure, type Entry, type Rule, type RuleContext, type RuleResult } from './rule.js';

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
