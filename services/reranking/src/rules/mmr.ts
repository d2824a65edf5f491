import { ItemVectors } from '../item-vectors.js';
import type { Entry, Rule, RuleContext, RuleResult } from './rule.js';
import { resolve } from 'node:path';
import { z } from 'zod';
import { RulesFileError } from '../rules-file-error.js';
import { defineRule, type Named, ruleName, says } from './definition.js';

export interface MmrOptions {
  name: string;
  /** 1: relevance only; 0: dissimilarity only. */
  lambda: number;
  vectors: ItemVectors;
}

/**
 * Maximal Marginal Relevance: the first `limit` positions are filled one at a time with the item
 * maximising λ·relevance − (1 − λ)·(highest cosine similarity to an item already placed). Relevance
 * is the score scaled to [0, 1] over the list; negative similarities and items without a vector
 * count as 0 (dissimilar). The items not placed follow in their current order.
 */
export class MmrRule implements Rule {
  readonly type = 'diversity' as const;
  readonly name: string;

  constructor(private readonly options: MmrOptions) {
    this.name = options.name;
  }

  needs() {
    return {};
  }

  apply(list: Entry[], context: RuleContext): RuleResult {
    const { lambda, vectors } = this.options;
    const vectorsOf = list.map((entry) => vectors.get(entry.itemId));
    const without = vectorsOf.filter((v) => v === undefined).length;
    const placed = Math.min(context.limit, list.length);
    return {
      list: maximalMarginalRelevance(list, vectorsOf, lambda, placed),
      detail: `λ ${lambda} over the first ${placed} positions; ${without} of ${list.length} items without a vector`,
    };
  }
}

export function maximalMarginalRelevance(
  list: readonly Entry[],
  vectorsOf: readonly (Float32Array | undefined)[],
  lambda: number,
  positions: number,
): Entry[] {
  const n = list.length;
  let low = Infinity;
  let high = -Infinity;
  for (const entry of list) {
    if (entry.score < low) low = entry.score;
    if (entry.score > high) high = entry.score;
  }
  const span = high - low;
  const relevance = list.map((entry) => (span > 0 ? (entry.score - low) / span : 1));
  // The candidates' vectors packed in one array: the similarity loop then runs over contiguous memory.
  const dim = vectorsOf.find((v) => v !== undefined)?.length ?? 0;
  const packed = new Float64Array(n * dim);
  const hasVector = new Uint8Array(n);
  vectorsOf.forEach((v, i) => {
    if (v === undefined) return;
    packed.set(v, i * dim);
    hasVector[i] = 1;
  });
  const maxSimilarity = new Float64Array(n);
  const taken = new Uint8Array(n);
  const result: Entry[] = [];
  for (let step = 0; step < positions; step++) {
    let best = -1;
    let bestValue = -Infinity;
    for (let i = 0; i < n; i++) {
      if (taken[i]) continue;
      const value = lambda * relevance[i]! - (1 - lambda) * maxSimilarity[i]!;
      // Strictly greater: ties go to the item earlier in the current order.
      if (value > bestValue) {
        bestValue = value;
        best = i;
      }
    }
    taken[best] = 1;
    result.push(list[best]!);
    if (!hasVector[best]) continue;
    const chosen = best * dim;
    for (let i = 0; i < n; i++) {
      if (taken[i] || !hasVector[i]) continue;
      const row = i * dim;
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += packed[row + k]! * packed[chosen + k]!;
      if (dot > maxSimilarity[i]!) maxSimilarity[i] = dot;
    }
  }
  for (let i = 0; i < n; i++) if (!taken[i]) result.push(list[i]!);
  return result;
}

const schema = z
  .object({
    rule: z.literal('diversity'),
    name: ruleName.optional(),
    kind: z.literal('mmr'),
    lambda: z
      .number(says('must be a number from 0 to 1'))
      .min(0, says('must be a number from 0 to 1'))
      .max(1, says('must be a number from 0 to 1')),
    vectors: z.string(says('must be the path of a two-tower model version directory')).min(1, says('must not be empty')),
  })
  .strict();

export type MmrConfig = Named<z.infer<typeof schema>>;

/** `diversity` with `kind: mmr` in a rules file; the item vectors are loaded here (a failure names the field). */
export const mmrRule = defineRule({
  type: 'diversity',
  kind: 'mmr',
  schema,
  create: async (rule, context) => {
    let vectors: ItemVectors;
    try {
      vectors = await ItemVectors.load(resolve(context.baseDir, rule.vectors));
    } catch (error) {
      throw new RulesFileError(context.field('vectors'), (error as Error).message);
    }
    return new MmrRule({ name: rule.name, lambda: rule.lambda, vectors });
  },
});
