import type { Entry, ItemInfo, Rule, RuleContext, RuleResult } from './rule.js';
import { z } from 'zod';
import { defineRule, intAtLeast, itemId, type Named, ruleName, says } from './definition.js';

export interface Pin {
  itemId: string;
  /** 1 is the top; past the list's end means the end. */
  position: number;
  /** Insert the item when it is not among the candidates (unless an earlier rule of the request removed it). */
  insert: boolean;
}

export interface PinOptions {
  name: string;
  pins: readonly Pin[];
}

/** Puts items at fixed positions; the other items keep their order around them. */
export class PinRule implements Rule {
  readonly type = 'pin' as const;
  readonly name: string;
  private readonly pins: readonly Pin[];
  private readonly insertable: readonly string[];

  constructor(options: PinOptions) {
    this.name = options.name;
    // Ascending positions: each insertion leaves the earlier pins where they are.
    this.pins = [...options.pins].sort((a, b) => a.position - b.position);
    this.insertable = this.pins.filter((pin) => pin.insert).map((pin) => pin.itemId);
  }

  needs() {
    // Only to give inserted items their category; read alongside the other reads.
    return this.insertable.length > 0 ? { items: true, extraItemIds: this.insertable } : {};
  }

  async apply(list: Entry[], context: RuleContext): Promise<RuleResult> {
    const present = new Map(list.map((entry) => [entry.itemId, entry]));
    const placed: { entry: Entry; position: number }[] = [];
    let inserted = 0;
    let absent = 0;
    let refused = 0;
    let items: ReadonlyMap<string, ItemInfo> | undefined;
    for (const pin of this.pins) {
      let entry = present.get(pin.itemId);
      if (!entry) {
        if (!pin.insert) {
          absent++;
          continue;
        }
        if (context.removed.has(pin.itemId)) {
          refused++;
          continue;
        }
        // A missing category only weakens later rules; the pin itself does not depend on the read.
        items ??= await context.items().catch(() => new Map<string, ItemInfo>());
        const info = items.get(pin.itemId);
        entry = {
          itemId: pin.itemId,
          score: 0,
          category: info?.category ?? '',
          createdAtMs: info?.createdAtMs ?? 0,
          channels: ['pin'],
          stageScores: [],
        };
        inserted++;
      }
      placed.push({ entry, position: pin.position });
    }
    const pinned = new Set(placed.map((p) => p.entry));
    const result = list.filter((entry) => !pinned.has(entry));
    for (const { entry, position } of placed) result.splice(Math.min(position - 1, result.length), 0, entry);
    const notes = [`pinned ${placed.length} items (${inserted} inserted)`];
    if (absent > 0) notes.push(`${absent} not among the candidates`);
    if (refused > 0) notes.push(`${refused} not inserted: removed by an earlier rule`);
    return { list: result, detail: notes.join('; ') };
  }
}

const pinEntry = z
  .object(
    {
      item_id: itemId,
      position: intAtLeast(1),
      insert: z.boolean(says('must be true or false')).default(false),
    },
    says('must be a mapping with item_id and position'),
  )
  .strict();

const schema = z
  .object({
    rule: z.literal('pin'),
    name: ruleName.optional(),
    pins: z.array(pinEntry, says('must be a list of pins')).min(1, says('must list at least one pin')),
  })
  .strict()
  .superRefine((rule, ctx) => {
    const positions = new Map<number, number>();
    const items = new Map<string, number>();
    rule.pins.forEach((p, j) => {
      if (positions.has(p.position)) {
        ctx.addIssue({
          code: 'custom',
          path: ['pins', j, 'position'],
          message: `position ${p.position} is already taken by pins[${positions.get(p.position)}]`,
        });
      }
      if (items.has(p.item_id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['pins', j, 'item_id'],
          message: `"${p.item_id}" is already pinned by pins[${items.get(p.item_id)}]`,
        });
      }
      positions.set(p.position, j);
      items.set(p.item_id, j);
    });
  });

export type PinConfig = Named<z.infer<typeof schema>>;

/** `pin` in a rules file. */
export const pinRule = defineRule({
  type: 'pin',
  schema,
  create: (rule) =>
    new PinRule({ name: rule.name, pins: rule.pins.map((p) => ({ itemId: p.item_id, position: p.position, insert: p.insert })) }),
});
