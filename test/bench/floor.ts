// The in-process floor of a pipeline request, shared by bench:gateway and bench:pipeline: the same models and index the
// pipeline serves, loaded here, and per request only the model and search work the pipeline did for it (user tower,
// index search for the retrieved count, pre-ranker over the retrieved candidates, DLRM over the ranked ones), with the
// inputs assembled beforehand and each request's candidate sets taken from a debug answer of the same request.
import { features } from '@recsys/contracts';
import { createServiceClient } from '@recsys/service-kit';
import { assembleFeeds, loadModelVersion, ModelSession, readItemVectors, UserTower, type FeatureRow } from '@recsys/serving';
import { readItemRows, readUserState } from '@recsys/stage';
import { inputLayout, prerankerLayout, type Tensor } from '@recsys/model-format';
import { openStore } from '@recsys/vector-index';

export const FLOOR_PARTS = ['embed', 'search', 'prerank', 'rank'] as const;
export type FloorPart = (typeof FLOOR_PARTS)[number];

/** One request as the pipeline ran it: its user, what retrieval returned and what pre-ranking passed to ranking. */
export interface RequestPlan {
  userId: string;
  retrieved: string[];
  ranked: string[];
}

export interface FloorSamples {
  /** Per request, the sum of its parts (ms). */
  floor: number[];
  parts: Record<FloorPart, number[]>;
}

const nowMs = () => performance.now();

/** The pre-ranker's feeds for one request's candidates, as the pre-ranking service assembles them. */
function prerankerFeeds(
  layout: ReturnType<typeof prerankerLayout>,
  userEmbedding: Float32Array,
  rows: { user: FeatureRow; context: FeatureRow; items: FeatureRow[] },
  vectors: { rowOf: Map<string, number>; data: Float32Array; dim: number },
): Record<string, Tensor> {
  const n = rows.items.length;
  const { dim } = vectors;
  const user = new Float32Array(n * dim);
  const items = new Float32Array(n * dim);
  rows.items.forEach((row, k) => {
    user.set(userEmbedding, k * dim);
    const at = vectors.rowOf.get(row.id);
    if (at !== undefined) items.set(vectors.data.subarray(at * dim, (at + 1) * dim), k * dim);
  });
  const feeds: Record<string, Tensor> = {
    user_embedding: { data: user, shape: [n, dim] },
    item_embedding: { data: items, shape: [n, dim] },
  };
  if (layout) {
    const continuous = assembleFeeds(layout, rows).continuous!;
    const width = continuous.shape[1]!;
    // User-only features come back as one row: every candidate shares it.
    if (continuous.shape[0] === n) feeds.continuous = continuous;
    else {
      const data = new Float32Array(n * width);
      for (let k = 0; k < n; k++) data.set(continuous.data.subarray(0, width) as Float32Array, k * width);
      feeds.continuous = { data, shape: [n, width] };
    }
  }
  return feeds;
}

/**
 * Measures the floor of each planned request (a first pass over `warmup` of them warms every session and the index).
 * `pipeline` gives the model root, the index directory and the feature service the inputs are read from.
 */
export async function measureFloor(
  pipeline: { modelsDir: string; indexDir: string; addresses: { features: string } },
  plans: readonly RequestPlan[],
  warmup: number,
): Promise<FloorSamples> {
  const dlrmVersion = await loadModelVersion(pipeline.modelsDir, 'dlrm');
  const prerankerVersion = await loadModelVersion(pipeline.modelsDir, 'preranker');
  const twoTowerVersion = await loadModelVersion(pipeline.modelsDir, 'two-tower', prerankerVersion.manifest.dependsOn?.['two-tower']);
  const options = { providers: ['cpu' as const], intraOpThreads: 1 };
  const tower = await UserTower.load(twoTowerVersion, options);
  const store = await openStore({ kind: 'embedded', root: pipeline.indexDir });
  const prerankerGraph = prerankerVersion.manifest.graphs.model!;
  const preranker = await ModelSession.create(prerankerVersion.graphs.model!, prerankerGraph.inputs, { ...options, label: 'preranker' });
  const dlrmGraph = dlrmVersion.manifest.graphs.model!;
  const dlrm = await ModelSession.create(dlrmVersion.graphs.model!, dlrmGraph.inputs, { ...options, label: 'dlrm' });
  const featureClient = createServiceClient(features.FeatureService, pipeline.addresses.features, { defaultTimeoutMs: 30_000 });
  const parts: Record<(typeof FLOOR_PARTS)[number], number[]> = { embed: [], search: [], prerank: [], rank: [] };
  const floor: number[] = [];
  try {
    const item = await readItemVectors(twoTowerVersion);
    const vectors = { rowOf: new Map(item.ids.map((id, row) => [id, row])), data: item.vectors, dim: item.dim };
    const dlrmSpec = dlrmVersion.manifest.featureSpecs.model!;
    const dlrmLayout = inputLayout(dlrmSpec);
    const prerankLayout = prerankerLayout(prerankerVersion.manifest.featureSpecs.model!);
    const recent = dlrmSpec.features.find((f) => f.name === 'recent_items');
    const dlrmHistory = recent?.kind === 'multi' ? recent.maxValues : 0;
    const timed = async (part: keyof typeof parts, work: () => Promise<unknown>) => {
      const t0 = nowMs();
      const value = await work();
      const ms = nowMs() - t0;
      parts[part].push(ms);
      return { value, ms };
    };
    for (let pass = 0; pass < 2; pass++) {
      // Pass 0 warms every session and the index on a few requests; pass 1 measures every request.
      const count = pass === 0 ? Math.min(warmup, plans.length) : plans.length;
      if (pass === 1) for (const list of Object.values(parts)) list.length = 0;
      for (let i = 0; i < count; i++) {
        const plan = plans[i]!;
        const towerState = await readUserState(featureClient, plan.userId, undefined, tower.historyLength, 200);
        const dlrmState = await readUserState(featureClient, plan.userId, undefined, dlrmHistory, 200);
        const seen = new Set(towerState.history.map((h) => h.itemId));
        const retrievedRows = (await readItemRows(featureClient, plan.retrieved)).rows;
        const rankedRows = (await readItemRows(featureClient, plan.ranked)).rows;
        const dlrmFeeds = assembleFeeds(dlrmLayout, { user: dlrmState.user, context: dlrmState.context, items: rankedRows });

        const embed = await timed('embed', () => tower.embed([{ user: towerState.user, context: towerState.context }]));
        const embedding = embed.value as Float32Array;
        const search = await timed('search', () => store.search(embedding, plan.retrieved.length, { excludeIds: seen }));
        const prerankFeeds = prerankerFeeds(
          prerankLayout,
          embedding,
          { user: dlrmState.user, context: dlrmState.context, items: retrievedRows },
          vectors,
        );
        const prerank = await timed('prerank', () => preranker.run(prerankFeeds));
        const rank = await timed('rank', () => dlrm.run(dlrmFeeds));
        if (pass === 1) floor.push(embed.ms + search.ms + prerank.ms + rank.ms);
      }
    }
  } finally {
    featureClient.close();
    await tower.release();
    await preranker.release();
    await dlrm.release();
    await store.close();
  }
  return { floor, parts };
}
