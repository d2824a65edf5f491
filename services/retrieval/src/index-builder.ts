import { performance } from 'node:perf_hooks';
import { loadModelVersion, readItemVectors } from '@recsys/serving';
import { type FeatureReader } from '@recsys/stage';
import {
  connectionOf,
  type HnswParams,
  listQdrantVersions,
  listVersions,
  publishIndex,
  type IndexBuildInput,
  type IndexInfo,
  type IndexTarget,
  type ItemPayload,
} from '@recsys/vector-index';
import { DEFAULT_QUERY_SAMPLE, sampleUserQueries, type QuerySample } from './query-sample.js';

export interface BuildIndexOptions {
  modelsDir: string;
  /** The two-tower version whose item vectors are indexed (default: the newest). */
  modelVersion?: string;
  target: IndexTarget;
  /** Where item categories and creation times come from; undefined indexes no payload (filters then match nothing by category). */
  payloadReader?: Pick<FeatureReader, 'batchGetItemFeatures'>;
  /** Ids per BatchGetItemFeatures call (the feature service's MAX_BATCH_SIZE bounds it). */
  payloadBatch?: number;
  /**
   * Where the users of the query sample are read (see sampleUserQueries): the graph — embedded, or Qdrant's over the
   * points' query-aware vectors — is built in the space the sample defines. Undefined builds it over the items alone.
   */
  queryReader?: FeatureReader;
  /** Users in the query sample (default DEFAULT_QUERY_SAMPLE; 0 takes none). */
  querySample?: number;
  /** Embedded HNSW parameters (default DEFAULT_HNSW_PARAMS). */
  hnsw?: Partial<HnswParams>;
  log?: (line: string) => void;
}

export interface BuildIndexResult {
  info: IndexInfo;
  /** Items the feature service did not know (indexed without category or creation time). */
  missingPayload: number;
  /** Users whose embeddings shaped the graph (0: built over the item vectors alone). */
  querySample: number;
  seconds: { read: number; payload: number; querySample: number; publish: number };
}

/** One more than the largest whole-number version published so far (1 for the first). */
export function nextIndexVersion(versions: readonly string[]): string {
  let max = 0;
  for (const version of versions) if (/^\d+$/.test(version)) max = Math.max(max, Number(version));
  return String(max + 1);
}

/** Item categories and creation times from the feature service, in batches; unknown items get an empty payload. */
export async function readItemPayload(
  reader: Pick<FeatureReader, 'batchGetItemFeatures'>,
  ids: readonly string[],
  batch: number,
): Promise<{ payload: ItemPayload[]; missing: number }> {
  const payload: ItemPayload[] = [];
  let missing = 0;
  for (let start = 0; start < ids.length; start += batch) {
    const slice = ids.slice(start, start + batch);
    const answer = await reader.batchGetItemFeatures({ itemIds: slice });
    if (answer.items.length !== slice.length) {
      throw new Error(`the feature service answered ${answer.items.length} items for ${slice.length} ids (from ${slice[0]})`);
    }
    for (const result of answer.items) {
      const item = result.found ? result.item : undefined;
      if (!item) missing++;
      const entry: ItemPayload = {};
      if (item && item.category !== '') entry.category = item.category;
      if (item && item.createdAtMs > 0n) entry.createdAtMs = Number(item.createdAtMs);
      payload.push(entry);
    }
  }
  return { payload, missing };
}

/**
 * Publishes a new index version from a two-tower version's item vectors: the version is the next whole number
 * at the target, and it records the two-tower version, so retrieval serves it with the matching user tower.
 */
export async function buildIndexVersion(options: BuildIndexOptions): Promise<BuildIndexResult> {
  const log = options.log ?? (() => undefined);
  let mark = performance.now();
  const lap = () => {
    const now = performance.now();
    const seconds = (now - mark) / 1000;
    mark = now;
    return seconds;
  };
  const model = await loadModelVersion(options.modelsDir, 'two-tower', options.modelVersion);
  const vectors = await readItemVectors(model);
  log(`two-tower ${model.version}: ${vectors.ids.length} item vectors of dimension ${vectors.dim}`);
  const read = lap();

  let payload: ItemPayload[] | undefined;
  let missingPayload = 0;
  if (options.payloadReader) {
    const answer = await readItemPayload(options.payloadReader, vectors.ids, options.payloadBatch ?? 1000);
    payload = answer.payload;
    missingPayload = answer.missing;
    log(`payload: ${vectors.ids.length - answer.missing} items from the feature service, ${answer.missing} unknown there (no category)`);
  }
  const payloadSeconds = lap();

  const { target } = options;
  const sampleSize = options.querySample ?? DEFAULT_QUERY_SAMPLE;
  let sample: QuerySample | undefined;
  if (options.queryReader && sampleSize > 0) {
    sample = await sampleUserQueries(options.queryReader, model, sampleSize);
    log(
      sample
        ? `query sample: ${sample.sampled} users embedded by the user tower (${sample.unknown} unknown to the feature service)`
        : 'query sample: none (the user tower names no users, or the feature service knows none): graph over the items alone',
    );
  }
  const sampleSeconds = lap();

  const existing =
    target.kind === 'embedded' ? await listVersions(target.root) : await listQdrantVersions(connectionOf(target), target.collection);
  const input: IndexBuildInput = {
    ids: vectors.ids,
    vectors: vectors.vectors,
    dim: vectors.dim,
    // The towers' outputs are L2-normalised: the inner product is the cosine the model was trained on.
    metric: 'ip',
    payload,
    version: nextIndexVersion(existing),
    modelVersion: model.version,
  };
  log(`publishing index version ${input.version} (${vectors.ids.length} items)`);
  const info = await publishIndex(target, input, {
    ...(sample ? { querySample: sample.vectors } : {}),
    ...(options.hnsw ? { hnsw: options.hnsw } : {}),
  });
  return {
    info,
    missingPayload,
    querySample: sample?.sampled ?? 0,
    seconds: { read, payload: payloadSeconds, querySample: sampleSeconds, publish: lap() },
  };
}
