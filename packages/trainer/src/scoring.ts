import type { TrainingSetup } from '@recsys/data';
import { topK } from './eval/metrics.js';
import type { Tensor } from './graph/evaluate.js';
import type { OrtRunner } from './graph/ort-runner.js';
import { type EncodedSources, type InputLayout, batchFeeds } from './models/inputs.js';
import { type TowerVectors, prerankingFeeds } from './train/preranking.js';
import { rankingFeeds } from './train/ranking.js';

/** Runs an ONNX model over `count` examples in chunks and concatenates one output. */
export async function predictInChunks(
  runner: OrtRunner,
  count: number,
  feeds: (from: number, to: number) => Record<string, Tensor>,
  output: string,
  chunk = 8192,
): Promise<Float32Array> {
  let width = 0;
  let out = new Float32Array(0);
  for (let from = 0; from < count; from += chunk) {
    const to = Math.min(count, from + chunk);
    const result = (await runner.run(feeds(from, to), [output]))[output]!;
    if (from === 0) {
      width = result.data.length / (to - from);
      out = new Float32Array(count * width);
    }
    out.set(result.data as Float32Array, from * width);
  }
  return out;
}

/** Click probabilities of interaction rows by a ranking graph (DLRM). */
export function scoreRanking(
  runner: OrtRunner,
  layout: InputLayout,
  setup: TrainingSetup,
  sources: EncodedSources,
  rows: Int32Array,
): Promise<Float32Array> {
  return predictInChunks(runner, rows.length, (a, b) => rankingFeeds(layout, setup, sources, rows.subarray(a, b)), 'probability');
}

/** A tower's output for every row of its table ([rows × dim]). */
export function embedRows(
  runner: OrtRunner,
  layout: InputLayout,
  sources: EncodedSources,
  source: 'user' | 'item',
  rows: number,
): Promise<Float32Array> {
  return predictInChunks(
    runner,
    rows,
    (a, b) => batchFeeds(layout, sources, { [source]: Int32Array.from({ length: b - a }, (_, k) => a + k) }, b - a, `${source}_`),
    'embedding',
  );
}

/** Pre-ranker probabilities of interaction rows. */
export function scorePreranking(
  runner: OrtRunner,
  layout: InputLayout | undefined,
  setup: TrainingSetup,
  sources: EncodedSources,
  vectors: TowerVectors,
  rows: Int32Array,
): Promise<Float32Array> {
  return predictInChunks(
    runner,
    rows.length,
    (a, b) => prerankingFeeds(layout, setup, sources, vectors, rows.subarray(a, b)),
    'probability',
  );
}

/**
 * The protocol's retrieval evaluation: for each user with test positives, the top `k` items by
 * user·item score, excluding the user's train items (any label).
 */
export function rankByVectors(
  setup: TrainingSetup,
  vectors: TowerVectors,
  k: number,
): { ranked: Int32Array[]; truth: Set<number>[]; corpusSize: number } {
  const { items, interactions } = setup.dataset;
  const { dim } = vectors;
  const seen = new Map<number, number[]>();
  const truth = new Map<number, Set<number>>();
  for (let r = 0; r < interactions.length; r++) {
    const u = interactions.user[r]!;
    if (setup.split[r] === 1) (seen.get(u) ?? seen.set(u, []).get(u)!).push(interactions.item[r]!);
    else if (interactions.value[r]! >= setup.dataset.positiveThreshold)
      (truth.get(u) ?? truth.set(u, new Set()).get(u)!).add(interactions.item[r]!);
  }
  const nItems = items.ids.length;
  const scores = new Float32Array(nItems);
  const ranked: Int32Array[] = [];
  const truths: Set<number>[] = [];
  for (const [u, positives] of [...truth].sort((a, b) => a[0] - b[0])) {
    const uo = u * dim;
    for (let i = 0; i < nItems; i++) {
      let s = 0;
      const io = i * dim;
      for (let j = 0; j < dim; j++) s += vectors.users[uo + j]! * vectors.items[io + j]!;
      scores[i] = s;
    }
    ranked.push(topK(scores, k, new Set(seen.get(u) ?? [])));
    truths.push(positives);
  }
  return { ranked, truth: truths, corpusSize: nItems };
}
