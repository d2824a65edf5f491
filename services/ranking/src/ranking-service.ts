import type { MessageInitShape } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import { common, ranking } from '@recsys/contracts';
import {
  type EncodedMessage,
  type CandidateIds,
  grpcStatusOf,
  InvalidArgumentError,
  readCandidateRequest,
  type RequestContext,
  ServiceError,
  UnavailableError,
  bestFirst,
  encodeScoredCandidates,
} from '@recsys/service-kit';
import { type ItemBytesReader, type ModelWatcher } from '@recsys/serving';
import { type FeatureReader, readUserState } from '@recsys/stage';
import type { RankingConfig } from './config.js';
import type { DlrmModel } from './dlrm-model.js';
import type { RankingMetrics } from './ranking-metrics.js';
import { checkCandidateRequest } from './validation.js';

type ModelInfoInit = MessageInitShape<typeof ranking.GetModelInfoResponseSchema>;

/** The caller's deadline passed while the features were read. */
class DeadlineExceededError extends ServiceError {
  readonly code = status.DEADLINE_EXCEEDED;
}

/** History entries asked for: the model's slots plus room for context items the history repeats (they are skipped). */
function historyLimit(historyLength: number, context: common.UserContext | undefined): number {
  if (historyLength === 0) return 1;
  return historyLength + Math.min(historyLength, context?.recentItems.length ?? 0);
}

/** What ranking reads from the feature service: the user, and the candidates' items as bytes. */
export type RankingFeatures = FeatureReader & ItemBytesReader;

/**
 * The ranking stage's logic, transport-free: validation, the user (passed down, or one read) and the candidates'
 * items (from the model's item table and cache, the rest in one batch read from the feature service), inputs assembled as the
 * trainer's feature spec says, scores from the DLRM through the batching queue, candidates sorted by score.
 */
export class RankingService {
  constructor(
    private readonly models: ModelWatcher<DlrmModel>,
    private readonly features: RankingFeatures,
    private readonly config: RankingConfig,
    private readonly metrics?: RankingMetrics,
  ) {}

  /** A RankRequest as its bytes: the candidates are read as bytes and copied into the answer, never decoded. */
  async rank(bytes: Uint8Array, context?: Pick<RequestContext, 'deadlineMs'>): Promise<EncodedMessage<typeof ranking.RankResponseSchema>> {
    const { message: request, candidates } = readCandidateRequest(ranking.RankRequestSchema, bytes);
    const itemIds = checkCandidateRequest(request, candidates, this.config);
    const deadlineMs = context?.deadlineMs ?? Infinity;
    // The whole request runs on the version it started with, even if a new one is swapped in meanwhile.
    const lease = this.models.acquire();
    try {
      const model = lease.model;
      const { scores, missing, createdAtMs } = await this.score(model, request, itemIds, deadlineMs);
      this.metrics?.missingItems(missing.length);
      const order = bestFirst(scores);
      const count = request.limit === 0 ? order.length : Math.min(request.limit, order.length);
      return encodeScoredCandidates(
        ranking.RankResponseSchema,
        common.Stage.RANKING,
        candidates,
        scores,
        order,
        count,
        model.version,
        missing,
        // Each candidate's creation time as read with its features: re-ranking's new-item rules need no item read.
        createdAtMs,
      );
    } finally {
      lease.release();
    }
  }

  /** Admitted before reading features: load is shed early, and a waiting batch knows this request is coming. */
  private async score(model: DlrmModel, request: ranking.RankRequest, itemIds: CandidateIds, deadlineMs: number) {
    const place = model.batcher.reserve(itemIds.length, deadlineMs);
    try {
      const [state, items] = await this.readFeatures(request, itemIds, model);
      const scores = await place.submit(model.assembler.assemble(state, items.batch));
      return { scores, missing: items.missing, createdAtMs: items.createdAtMs };
    } finally {
      place.cancel();
    }
  }

  modelInfo(): ModelInfoInit {
    const lease = this.models.acquire();
    try {
      return {
        modelName: 'dlrm',
        modelVersion: lease.version,
        executionProvider: lease.model.provider,
        maxBatchSize: this.config.maxBatchSize,
        maxQueueDelayMs: this.config.batching ? this.config.maxQueueDelayMs : 0,
      };
    } finally {
      lease.release();
    }
  }

  /**
   * The user (a cold user is fine: defaults) and every candidate's encoded features (cached ones from
   * memory), read concurrently. Without the feature service there is no answer: scores of default item
   * features would order the candidates by noise, and UNAVAILABLE lets the caller keep the pre-ranking
   * order instead.
   */
  private async readFeatures(request: ranking.RankRequest, itemIds: CandidateIds, model: DlrmModel) {
    const { historyLength } = model;
    try {
      return await Promise.all([
        readUserState(this.features, request.userId, request.context, historyLength, historyLimit(historyLength, request.context), request),
        model.items.read(this.features, itemIds),
      ]);
    } catch (error) {
      // A passed-down user state that does not belong to the request's user: the caller's error, as it is.
      if (error instanceof InvalidArgumentError) throw error;
      const code = grpcStatusOf(error);
      const detail = (error as { details?: string }).details || (error instanceof Error ? error.message : String(error));
      if (code === status.DEADLINE_EXCEEDED || code === status.CANCELLED) {
        throw new DeadlineExceededError(`the deadline passed while reading features: ${detail}`);
      }
      if (code === status.INVALID_ARGUMENT) throw new InvalidArgumentError('candidates', `the feature service refused them: ${detail}`);
      throw new UnavailableError(
        `feature service at ${this.config.featuresAddress} failed (${status[code]}: ${detail}); ranking needs item features, so it does not score without them`,
        { cause: error },
      );
    }
  }
}
