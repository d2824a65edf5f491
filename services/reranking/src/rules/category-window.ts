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

/** The entries of one category still to place, in list order; `next` is the first of them. */
interface CategoryQueue {
  category: string;
  /** Positions in the input list. */
  positions: number[];
  next: number;
  /** Placed among the last window − 1 (never counted for the unknown category ''). */
  inWindow: number;
  /** Whether the queue is in the heap of queues whose category fits the window now. */
  queued: boolean;
}

/**
 * The greedy arrangement above in O(n log C) for n items of C categories: each category's remaining items wait in a
 * queue, and the queues whose category fits the window now sit in a heap ordered by their first item's position, so
 * "the first remaining item that fits" is the heap's top. A placement can only block its own category and a window
 * slide can only free the leaving item's, so no queue in the heap ever needs to leave it out of turn. When the heap
 * is empty every remaining category is full, and the relaxation scans those queues (at most (window − 1) / max of
 * them hold a count, the rest are spent).
 */
export function arrangeByCategoryWindow(
  list: readonly Entry[],
  window: number,
  maxPerCategory: number,
): { arranged: Entry[]; relaxed: number } {
  const queues = new Map<string, CategoryQueue>();
  list.forEach((entry, position) => {
    const queue = queues.get(entry.category);
    if (queue) queue.positions.push(position);
    else queues.set(entry.category, { category: entry.category, positions: [position], next: 0, inWindow: 0, queued: false });
  });
  const fits = (queue: CategoryQueue) => queue.category === '' || queue.inWindow < maxPerCategory;
  const head = (queue: CategoryQueue) => queue.positions[queue.next]!;
  const heap = new QueueHeap(head);
  /** Into the heap, unless it is there, spent, or its category is full in the window. */
  const offer = (queue: CategoryQueue) => {
    if (queue.queued || queue.next >= queue.positions.length || !fits(queue)) return;
    queue.queued = true;
    heap.push(queue);
  };
  for (const queue of queues.values()) offer(queue);
  const arranged: Entry[] = [];
  let relaxed = 0;
  while (arranged.length < list.length) {
    let queue = heap.pop();
    if (queue === undefined) {
      // Nothing fits: the first item of the category least represented in the window (the earliest on a tie).
      relaxed++;
      for (const candidate of queues.values()) {
        if (candidate.next >= candidate.positions.length) continue;
        if (
          queue === undefined ||
          candidate.inWindow < queue.inWindow ||
          (candidate.inWindow === queue.inWindow && head(candidate) < head(queue))
        )
          queue = candidate;
      }
    } else queue.queued = false;
    const taken = queue!;
    arranged.push(list[head(taken)]!);
    taken.next++;
    if (taken.category !== '') taken.inWindow++;
    if (arranged.length >= window) {
      const leaving = queues.get(arranged[arranged.length - window]!.category)!;
      if (leaving.category !== '') leaving.inWindow--;
      offer(leaving);
    }
    offer(taken);
  }
  return { arranged, relaxed };
}

/** A binary min-heap of category queues by their first item's position. */
class QueueHeap {
  private readonly items: CategoryQueue[] = [];

  constructor(private readonly key: (queue: CategoryQueue) => number) {}

  push(queue: CategoryQueue): void {
    const { items, key } = this;
    let i = items.push(queue) - 1;
    const k = key(queue);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (key(items[parent]!) <= k) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = queue;
  }

  pop(): CategoryQueue | undefined {
    const { items, key } = this;
    if (items.length === 0) return undefined;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      const k = key(last);
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= items.length) break;
        if (child + 1 < items.length && key(items[child + 1]!) < key(items[child]!)) child++;
        if (key(items[child]!) >= k) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
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
