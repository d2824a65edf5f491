// What a served model's feature layout keeps on the heap at a large catalogue, against its baseline in the same run:
// a user tower's feature spec (a user id, and the recent items and the user's history sharing one vocabulary of
// BENCH_ITEMS item ids, as the two-tower's spec has them) read from its JSON text as a manifest is, its layout made and
// compiled (FeedAssembler.of, the user tower's prefix), the spec then let go, as the user tower holds it:
// - baseline: inputLayout(spec), the trainer's layout (its features hold their vocabularies);
// - served: servingLayout(spec) (vocabularies of LARGE_VOCABULARY values or more compiled into IdTables and dropped).
// Per side, over BENCH_ROUNDS alternating rounds: the heap and the array buffers (an IdTable's tables) it adds after
// full collections, and the median time of
// BENCH_COLLECTIONS forced full collections while it is held. Last line: one JSON object.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { inputLayout, type InputLayout } from '@recsys/model-format';
import { assembleFeeds, FeedAssembler, LARGE_VOCABULARY, servingLayout } from '@recsys/serving';
import type { FeatureSpec } from '@recsys/data';
import { envNumber } from '../harness/script-env';
import { quantile, round } from './stats';

const ITEMS = envNumber('BENCH_ITEMS', 1_000_000);
const USERS = envNumber('BENCH_USERS', 50_000);
const ROUNDS = envNumber('BENCH_ROUNDS', 3);
const COLLECTIONS = envNumber('BENCH_COLLECTIONS', 9);

// node's gc, with or without --expose-gc on the command line.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/** The spec as a manifest's JSON text: parsing it makes the strings a loaded model holds. */
function specText(): string {
  const items = ['<unk>', ...Array.from({ length: ITEMS }, (_, k) => `item-${k}`)];
  const users = ['<unk>', ...Array.from({ length: USERS }, (_, k) => `user-${k + 1}`)];
  const spec: FeatureSpec = {
    features: [
      { kind: 'categorical', name: 'user_id', source: 'user', column: 'user_id', vocabulary: users, unknown: 0 },
      { kind: 'multi', name: 'recent_items', source: 'context', column: 'recent_items', vocabulary: items, unknown: 0, maxValues: 20 },
      { kind: 'multi', name: 'user_history', source: 'context', column: 'user_history', vocabulary: items, unknown: 0, maxValues: 20 },
    ],
  };
  return JSON.stringify(spec);
}

/** The JS heap in use and the bytes of array buffers (an IdTable's tables live there), after full collections. */
function memory(): { heap: number; buffers: number } {
  for (let k = 0; k < 3; k++) collect();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return { heap: heapUsed, buffers: arrayBuffers };
}

const PREFIX = 'user_';

/** One side: the layout made from a freshly parsed spec and compiled, the spec let go; its heap and GC time. */
function measure(
  text: string,
  layoutOf: (spec: FeatureSpec) => InputLayout,
): { heapMiB: number; buffersMiB: number; gcMs: number; codes: number[] } {
  const before = memory();
  let layout: InputLayout | undefined = layoutOf(JSON.parse(text) as FeatureSpec);
  FeedAssembler.of(layout, PREFIX);
  const after = memory();
  const heapMiB = (after.heap - before.heap) / 2 ** 20;
  const buffersMiB = (after.buffers - before.buffers) / 2 ** 20;
  const ms: number[] = [];
  for (let k = 0; k < COLLECTIONS; k++) {
    const started = process.hrtime.bigint();
    collect();
    ms.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  // The same request encoded on both sides (their codes are compared).
  const context = { id: '', get: (column: string) => (column === 'recent_items' ? [`item-${ITEMS - 1}`, 'item-7', 'nope'] : ['item-0']) };
  const feeds = assembleFeeds(layout, { user: { id: 'user-3', get: () => undefined }, context }, PREFIX);
  const codes = Object.keys(feeds)
    .sort()
    .flatMap((name) => Array.from(feeds[name]!.data));
  layout = undefined;
  return { heapMiB, buffersMiB, gcMs: quantile(ms, 0.5), codes };
}

function main(): void {
  if (ITEMS < LARGE_VOCABULARY) console.log(`BENCH_ITEMS ${ITEMS} is under LARGE_VOCABULARY (${LARGE_VOCABULARY}): both sides keep it`);
  const text = specText();
  const sides = { baseline: inputLayout, served: servingLayout } as const;
  const results: Record<keyof typeof sides, { heapMiB: number[]; buffersMiB: number[]; gcMs: number[] }> = {
    baseline: { heapMiB: [], buffersMiB: [], gcMs: [] },
    served: { heapMiB: [], buffersMiB: [], gcMs: [] },
  };
  for (let round_ = 0; round_ < ROUNDS; round_++) {
    const order = round_ % 2 === 0 ? (['baseline', 'served'] as const) : (['served', 'baseline'] as const);
    const codes: number[][] = [];
    for (const side of order) {
      const { heapMiB, buffersMiB, gcMs, codes: sideCodes } = measure(text, sides[side]);
      results[side].heapMiB.push(heapMiB);
      results[side].buffersMiB.push(buffersMiB);
      results[side].gcMs.push(gcMs);
      codes.push(sideCodes);
      console.log(
        `round ${round_ + 1} ${side}: +${round(heapMiB, 1)} MiB of heap, +${round(buffersMiB, 1)} MiB of array buffers, ` +
          `a full collection ${round(gcMs, 2)} ms`,
      );
    }
    if (codes[0]!.join() !== codes[1]!.join()) throw new Error(`the two layouts encode differently: ${codes[0]} against ${codes[1]}`);
  }
  const median = (values: number[]) => quantile(values, 0.5);
  const figures = {
    items: ITEMS,
    users: USERS,
    rounds: ROUNDS,
    baseline_heap_mib: round(median(results.baseline.heapMiB), 1),
    served_heap_mib: round(median(results.served.heapMiB), 1),
    baseline_buffers_mib: round(median(results.baseline.buffersMiB), 1),
    served_buffers_mib: round(median(results.served.buffersMiB), 1),
    baseline_full_gc_ms: round(median(results.baseline.gcMs), 2),
    served_full_gc_ms: round(median(results.served.gcMs), 2),
  };
  console.log(JSON.stringify({ ...figures, heap_ratio: round(figures.served_heap_mib / figures.baseline_heap_mib, 3) }));
}

main();
