import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import { common, retrieval } from '@recsys/contracts';
import {
  EncodedMessage,
  InvalidArgumentError,
  NotFoundError,
  remainingMs,
  ServiceError,
  UnavailableError,
  type Logger,
  encodeNewCandidates,
} from '@recsys/service-kit';
import { recentItems } from '@recsys/serving';
import { contextOnlyState, readUserState, type FeatureReader, type UserState } from '@recsys/stage';
import type { VectorStore } from '@recsys/vector-index';
import { performance } from 'node:perf_hooks';
import { type ChannelCandidate, channelCandidate, type ChannelName, type SourceFilter } from './channels/channel.js';
import { itemToItemCandidates } from './channels/item-to-item.js';
import { popularCandidates, type PopularItemsReader } from './channels/popular.js';
import { twoTowerCandidates } from './channels/two-tower.js';
import type { RetrievalConfig } from './config.js';
import { blockedItems, mergeChannels, seenItems } from './merge.js';
import type { RetrievalMetrics } from './retrieval-metrics.js';
import type { ServingIndex, ServingIndexHolder } from './serving-index.js';
import { checkRetrieveRequest, checkSimilarItemsRequest, type RequestLimits, type RetrievePlan } from './validation.js';

type Init<T extends DescMessage> = MessageInitShape<T>;
type RetrieveAnswer = EncodedMessage<typeof retrieval.RetrieveResponseSchema>;
type CandidateInit = Init<typeof common.CandidateSchema>;

/** The feature-service calls retrieval makes; the typed gRPC client satisfies it. */
export type RetrievalFeatureReader = FeatureReader & PopularItemsReader;

export type RetrievalSettings = Pick<
  RetrievalConfig,
  | 'channelTimeoutMs'
  | 'historyLength'
  | 'itemToItemSeeds'
  | 'itemToItemDecay'
  | 'fusionK'
  | 'defaultLimit'
  | 'maxLimit'
  | 'quotas'
  | 'maxIdLength'
  | 'maxListSize'
>;

/** What one channel did for one request. */
interface ChannelRun {
  channel: ChannelName;
  candidates: ChannelCandidate[];
  durationMs: number;
  /** Why the channel did not answer; undefined when it did. */
  error?: string;
  timedOut?: boolean;
  /** A planned non-answer (cold start), not a failure. */
  skipped?: boolean;
}

class ChannelTimeoutError extends Error {
  constructor(ms: number) {
    super(`timed out after ${Math.round(ms)} ms`);
  }
}

/**
 * Popular items with their categories from the index payload (the feature service answers ids and scores only); a
 * failed lookup leaves the categories out rather than failing the channel.
 */
async function withCategories(store: VectorStore, candidates: ChannelCandidate[]): Promise<ChannelCandidate[]> {
  let payloads;
  try {
    payloads = await store.payloads(candidates.map((c) => c.itemId));
  } catch {
    return candidates;
  }
  return candidates.map((c, k) => {
    const category = payloads[k]?.category;
    return category === undefined ? c : channelCandidate(c.itemId, c.score, category);
  });
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Candidate generation: the user's embedding searched in the index (two_tower), the feature service's popular
 * items (popular) and the neighbours of the user's recent items (item_to_item) run concurrently, each within its
 * quota and timeout; their answers are fused by reciprocal rank (see mergeChannels). A channel that fails is
 * reported and the others still answer; only when every channel that ran failed does the call fail.
 */
export class RetrievalService {
  private readonly limits: RequestLimits;

  constructor(
    private readonly features: RetrievalFeatureReader,
    private readonly indexes: ServingIndexHolder,
    private readonly settings: RetrievalSettings,
    private readonly metrics: RetrievalMetrics,
    private readonly logger: Logger,
  ) {
    this.limits = settings;
  }

  /** A RetrieveRequest as its bytes (the hot method); the answer's candidates are written as bytes. */
  retrieveBytes(bytes: Uint8Array): Promise<RetrieveAnswer> {
    let request: retrieval.RetrieveRequest;
    try {
      request = fromBinary(retrieval.RetrieveRequestSchema, bytes);
    } catch (error) {
      return Promise.reject(
        new InvalidArgumentError('request', `is not a valid ${retrieval.RetrieveRequestSchema.typeName} message (${message(error)})`),
      );
    }
    return this.retrieve(request);
  }

  async retrieve(request: retrieval.RetrieveRequest): Promise<RetrieveAnswer> {
    const plan = checkRetrieveRequest(request, this.limits);
    return this.indexes.use((index) => this.retrieveWith(index, request, plan));
  }

  private async retrieveWith(index: ServingIndex, request: retrieval.RetrieveRequest, plan: RetrievePlan): Promise<RetrieveAnswer> {
    const { quotas } = plan;
    const { context, filter } = request;
    const historyLimit = Math.max(this.settings.historyLength, index.tower.historyLength);
    // Popular needs no user state: it starts at once and over-asks by as many items as may be dropped as seen.
    const overfetch = request.includeSeen ? 0 : historyLimit + (context?.recentItems.length ?? 0);
    const popular = this.startChannel('popular', quotas.popular, async (signal) =>
      withCategories(index.store, await popularCandidates(this.features, quotas.popular, overfetch, filter, signal)),
    );

    const { state, answered } = await this.userState(request, index.tower.historyLength, historyLimit);
    const coldStart = answered && !state.found;
    if (coldStart) this.metrics.coldStart();
    const sourceFilter: SourceFilter = {
      blocked: blockedItems(seenItems(state.history, context), request.includeSeen, filter),
      includeCategories: filter?.includeCategories ?? [],
      excludeCategories: filter?.excludeCategories ?? [],
    };

    // The embedding is answered even when the two_tower quota is 0: pre-ranking reads it.
    const embedding = coldStart ? undefined : this.embed(index, state);
    const twoTower = coldStart
      ? Promise.resolve(this.skipped('two_tower', quotas.two_tower, 'skipped: unknown user (cold start)'))
      : this.startChannel('two_tower', quotas.two_tower, async () => {
          const vector = await embedding!;
          if (!vector) throw new Error('the user tower failed (see the service log)');
          return twoTowerCandidates(index.store, vector, quotas.two_tower, sourceFilter);
        });
    const seeds = recentItems(context, state.history, this.settings.itemToItemSeeds);
    const itemToItem = this.startChannel('item_to_item', quotas.item_to_item, () =>
      itemToItemCandidates(index.store, seeds, quotas.item_to_item, sourceFilter, this.settings.itemToItemDecay),
    );

    const runs = (await Promise.all([twoTower, popular, itemToItem])).filter((run): run is ChannelRun => run !== undefined);
    const { contributed, merged } = mergeChannels(
      runs.map((run) => ({ channel: run.channel, candidates: run.error === undefined ? run.candidates : [] })),
      sourceFilter.blocked,
      runs.map((run) => quotas[run.channel]),
      plan.limit,
      this.settings.fusionK,
    );
    const reports: Init<typeof retrieval.ChannelReportSchema>[] = [];
    runs.forEach((run, j) => {
      const returned = contributed[j]!;
      reports.push({ channel: run.channel, returned, durationMs: run.durationMs, error: run.error ?? '' });
      const outcome = run.skipped ? 'skipped' : run.error === undefined ? 'ok' : run.timedOut ? 'timeout' : 'error';
      this.metrics.channel(run.channel, outcome, run.durationMs / 1000, returned);
    });
    const failed = runs.filter((run) => !run.skipped && run.error !== undefined);
    if (failed.length > 0) {
      this.logger.warn({ channels: Object.fromEntries(failed.map((run) => [run.channel, run.error])) }, 'retrieval channels failed');
      if (failed.length === runs.filter((run) => !run.skipped).length) {
        throw new UnavailableError(`every retrieval channel failed: ${failed.map((run) => `${run.channel}: ${run.error}`).join('; ')}`);
      }
    }

    const vector = embedding ? await embedding : undefined;
    // The candidates written as bytes from the merge's columns (hundreds of Candidate messages built only to be
    // serialised were most of the answer's cost); the rest of the answer by protobuf-es.
    const candidates = encodeNewCandidates(retrieval.RetrieveResponseSchema, common.Stage.RETRIEVAL, merged);
    const rest = toBinary(
      retrieval.RetrieveResponseSchema,
      create(retrieval.RetrieveResponseSchema, {
        channels: reports,
        indexVersion: index.info.version,
        coldStart,
        userEmbedding: vector ? Array.from(vector) : [],
        modelVersion: index.info.modelVersion,
      }),
    );
    return new EncodedMessage(retrieval.RetrieveResponseSchema, Buffer.concat([candidates, rest]));
  }

  async getSimilarItems(request: retrieval.GetSimilarItemsRequest): Promise<Init<typeof retrieval.GetSimilarItemsResponseSchema>> {
    const { limit } = checkSimilarItemsRequest(request, this.limits);
    return this.indexes.use(async ({ store, info }) => {
      const hits = await this.guardStore(async () => {
        const [vector] = await store.getVectors([request.itemId]);
        if (!vector) throw new NotFoundError(`item_id: "${request.itemId}" is not in index version ${info.version}`);
        const filter = request.filter;
        return store.search(vector, limit, {
          excludeIds: new Set([request.itemId, ...(filter?.excludeItemIds ?? [])]),
          includeCategories: filter?.includeCategories ?? [],
          excludeCategories: filter?.excludeCategories ?? [],
        });
      });
      return {
        candidates: hits.map((hit): CandidateInit => ({
          itemId: hit.id,
          score: hit.score,
          channels: ['item_to_item'],
          stageScores: [{ stage: common.Stage.RETRIEVAL, score: hit.score }],
          category: hit.payload?.category ?? '',
        })),
      };
    });
  }

  getIndexInfo(): Init<typeof retrieval.GetIndexInfoResponseSchema> {
    const { info } = this.indexes.current;
    return {
      indexVersion: info.version,
      backend: info.backend,
      size: BigInt(info.size),
      dimension: info.dimension,
      metric: info.metric,
      modelVersion: info.modelVersion,
    };
  }

  /** The user's state from the feature service, or the request context alone when that call fails. */
  private async userState(
    request: retrieval.RetrieveRequest,
    towerHistoryLength: number,
    historyLimit: number,
  ): Promise<{ state: UserState; answered: boolean }> {
    const { userId, context } = request;
    try {
      return { state: await readUserState(this.features, userId, context, towerHistoryLength, historyLimit, request), answered: true };
    } catch (error) {
      if (error instanceof InvalidArgumentError) throw error;
      this.metrics.userStateFailure();
      this.logger.warn({ err: error }, 'user state unavailable: serving on the request context alone');
      return { state: contextOnlyState(userId, context, towerHistoryLength), answered: false };
    }
  }

  /** The user's embedding, or undefined (logged) when the tower fails: the other channels still answer. */
  private async embed(index: ServingIndex, state: UserState): Promise<Float32Array | undefined> {
    try {
      return await index.tower.embed([{ user: state.user, context: state.context }]);
    } catch (error) {
      this.logger.error({ err: error, modelVersion: index.tower.version }, 'user tower failed');
      return undefined;
    }
  }

  /** Runs a channel within its timeout (and the caller's deadline); undefined when its quota is 0 (turned off). */
  private startChannel(
    channel: ChannelName,
    quota: number,
    work: (signal: AbortSignal) => Promise<ChannelCandidate[]>,
  ): Promise<ChannelRun> | undefined {
    if (quota === 0) return undefined;
    const started = performance.now();
    const timeoutMs = Math.max(0, Math.min(this.settings.channelTimeoutMs, remainingMs()));
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new ChannelTimeoutError(timeoutMs));
      }, timeoutMs);
    });
    return Promise.race([work(controller.signal), timeout]).then(
      (candidates): ChannelRun => {
        clearTimeout(timer);
        return { channel, candidates, durationMs: performance.now() - started };
      },
      (error: unknown): ChannelRun => {
        clearTimeout(timer);
        const timedOut = error instanceof ChannelTimeoutError;
        return { channel, candidates: [], durationMs: performance.now() - started, error: message(error) || 'failed', timedOut };
      },
    );
  }

  private skipped(channel: ChannelName, quota: number, why: string): ChannelRun | undefined {
    return quota === 0 ? undefined : { channel, candidates: [], durationMs: 0, error: why, skipped: true };
  }

  /** Index failures other than a request's own (unknown item) are the backend's: UNAVAILABLE. */
  private async guardStore<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof ServiceError) throw error;
      throw new UnavailableError(`index search failed: ${message(error)}`, { cause: error });
    }
  }
}
