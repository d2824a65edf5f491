import type { TrainingSetup } from '@recsys/data';
import { topK } from './eval/metrics.js';
import type { Tensor } from './graph/evaluate.js';
import { g } from './graph/graph.js';
import { toOnnxModel } from './graph/onnx.js';
import { OrtRunner } from './graph/ort-runner.js';
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

/** A tower's output for every row of its table ([rows × dim]); a user tower reads context row u for user u. */
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
    (a, b) => {
      const rows = Int32Array.from({ length: b - a }, (_, k) => a + k);
      // A user row's context is that user's state row (see userStateContext).
      return batchFeeds(layout, sources, source === 'user' ? { user: rows, context: rows } : { item: rows }, b - a, `${source}_`);
    },
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

/** At most this many users are ranked in an evaluation (an even, deterministic sample beyond it). */
export const MAX_EVALUATION_USERS = 5000;
const USER_CHUNK = 256;

/**
 * The protocol's retrieval evaluation: for each user with test positives, the top `k` items by
 * user·item score, excluding the user's train items (any label). Scores come from onnxruntime
 * (one matmul per chunk of users), so large catalogues stay tractable.
 */
export async function rankByVectors(
  setup: TrainingSetup,
  vectors: TowerVectors,
  k: number,
  maxUsers = MAX_EVALUATION_USERS,
): Promise<{ ranked: Int32Array[]; truth: Set<number>[]; corpusSize: number }> {
  const { items, interactions } = setup.dataset;
  const { dim } = vectors;
  const seen = new Map<number, number[]>();
  const truth = new Map<number, Set<number>>();
  for (let r = 0; r < interactions.length; r++) {
    const u = interactions.user[r]!;
    if (setup.split[r] === 1) (seen.get(u) ?? seen.set(u, []).get(u)!).push(interactions.item[r]!);
    else if (setup.split[r] === 0 && interactions.value[r]! >= setup.dataset.positiveThreshold)
      (truth.get(u) ?? truth.set(u, new Set()).get(u)!).add(interactions.item[r]!);
  }
  let users = [...truth.keys()].sort((a, b) => a - b);
  if (users.length > maxUsers) users = Array.from({ length: maxUsers }, (_, j) => users[Math.floor((j * users.length) / maxUsers)]!);
  const nItems = items.ids.length;
  const u = g.input('users', ['B', dim]);
  const v = g.input('items', ['N', dim]);
  const runner = await OrtRunner.create(
    toOnnxModel({ name: 'scores', outputs: { scores: g.matmul(u, g.transpose(v)) }, params: 'initializer' }),
  );
  const ranked: Int32Array[] = [];
  try {
    for (let from = 0; from < users.length; from += USER_CHUNK) {
      const chunk = users.slice(from, from + USER_CHUNK);
      const userRows = new Float32Array(chunk.length * dim);
      chunk.forEach((user, j) => userRows.set(vectors.users.subarray(user * dim, (user + 1) * dim), j * dim));
      const scores = (
        await runner.run({ users: { data: userRows, shape: [chunk.length, dim] }, items: { data: vectors.items, shape: [nItems, dim] } })
      ).scores!.data as Float32Array;
      chunk.forEach((user, j) => ranked.push(topK(scores.subarray(j * nItems, (j + 1) * nItems), k, new Set(seen.get(user) ?? []))));
    }
  } finally {
    await runner.release();
  }
  return { ranked, truth: users.map((user) => truth.get(user)!), corpusSize: nItems };
}
