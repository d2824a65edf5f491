import { status } from '@grpc/grpc-js';
import { common, preranking } from '@recsys/contracts';
import {
  type CandidateIds,
  type EncodedMessage,
  grpcStatusOf,
  InvalidArgumentError,
  type Logger,
  readCandidateRequest,
  ServiceError,
  UnavailableError,
  bestFirst,
  encodeScoredCandidates,
} from '@recsys/service-kit';
import { type CandidateItemsRead, type ItemBytesReader, type ModelWatcher } from '@recsys/serving';
import { type FeatureReader, type UserState, contextOnlyState, readUserState } from '@recsys/stage';
import type { PrerankingConfig } from './config.js';
import type { PrerankerModel } from './preranker-model.js';
import type { PrerankingMetrics } from './preranking-metrics.js';
import { checkPrerankRequest } from './validation.js';

/** The caller's deadline passed while the features were read. */
class DeadlineExceededError extends ServiceError {
  readonly code = status.DEADLINE_EXCEEDED;
}

/** What pre-ranking reads from the feature service: the user, and the candidates' items as bytes. */
export type PrerankingFeatures = FeatureReader & ItemBytesReader;

/** Unknown ids named in a log line at most. */
const LOGGED_IDS = 20;

/**
 * The pre-ranking stage's logic, transport-free: every candidate scored by the light model in one run,
 * the top N kept. The user embedding is the request's when retrieval made it with the two-tower version
 * the pre-ranker was trained on; otherwise the service embeds the user with that version's user tower.
 */
export class PrerankingService {
  constructor(
    private readonly models: ModelWatcher<PrerankerModel>,
    private readonly features: PrerankingFeatures,
    private readonly config: PrerankingConfig,
    private readonly logger: Logger,
    private readonly metrics?: PrerankingMetrics,
  ) {}

  /** A PrerankRequest as its bytes: the candidates are read as bytes and copied into the answer, never decoded. */
  async prerank(bytes: Uint8Array): Promise<EncodedMessage<typeof preranking.PrerankResponseSchema>> {
    const { message: request, candidates } = readCandidateRequest(preranking.PrerankRequestSchema, bytes);
    const { itemIds, keep } = checkPrerankRequest(request, candidates, this.config);
    const lease = this.models.acquire();
    try {
      const model = lease.model;
      const given = this.givenEmbedding(request, model);
      const historyLength = given ? 0 : model.userTower.historyLength;
      const [state, items] = await this.readFeatures(request, itemIds, model, historyLength, given !== undefined);
      const embedding = given ?? (await model.userTower.embed([state]));
      const { scores, unknown } = await model.score(embedding, itemIds, state, items?.batch, items?.linked);
      if (unknown.length > 0) {
        // Kept with a zero vector: the continuous features still score them, and a new item gets its chance.
        this.metrics?.unknownItems(unknown.length);
        this.logger.warn(
          { twoTower: model.twoTowerVersion, count: unknown.length, itemIds: unknown.slice(0, LOGGED_IDS) },
          `${unknown.length} candidates have no two-tower v${model.twoTowerVersion} vector; scored with a zero item embedding`,
        );
      }
      this.metrics?.userEmbedding(given ? 'request' : 'computed');
      // The `keep` best (ties keep the caller's order), each with its pre-ranking score appended.
      return encodeScoredCandidates(
        preranking.PrerankResponseSchema,
        common.Stage.PRERANKING,
        candidates,
        scores,
        bestFirst(scores),
        keep,
        model.version,
        [],
        items?.createdAtMs,
      );
    } finally {
      lease.release();
    }
  }

  /** The request's user embedding when it comes from the two-tower version the pre-ranker reads; else undefined. */
  private givenEmbedding(request: preranking.PrerankRequest, model: PrerankerModel): Float32Array | undefined {
    const values = request.userEmbedding;
    if (values.length === 0) return undefined;
    if (request.embeddingModelVersion !== model.twoTowerVersion) {
      this.logger.debug(
        { given: request.embeddingModelVersion, needed: model.twoTowerVersion },
        'the request embedding comes from another two-tower version; embedding the user here',
      );
      return undefined;
    }
    if (values.length !== model.dim) {
      throw new InvalidArgumentError(
        'user_embedding',
        `has ${values.length} values; two-tower v${model.twoTowerVersion} embeds in ${model.dim}`,
      );
    }
    return Float32Array.from(values);
  }

  /**
   * The user state (stored features and history, when the user must be embedded here or features read
   * the user) and the candidates' encoded items (from the model's item table and cache, the rest in one batch read),
   * read concurrently. Without the feature service there is no answer (UNAVAILABLE): the caller keeps the
   * retrieval order rather than scores of default features.
   */
  private async readFeatures(
    request: preranking.PrerankRequest,
    itemIds: CandidateIds,
    model: PrerankerModel,
    historyLength: number,
    embedded: boolean,
  ): Promise<[UserState, CandidateItemsRead | undefined]> {
    const needUser = !embedded || model.readsUser;
    const historyLimit = historyLength === 0 ? 1 : historyLength + Math.min(historyLength, request.context?.recentItems.length ?? 0);
    try {
      return await Promise.all([
        needUser
          ? readUserState(this.features, request.userId, request.context, historyLength, historyLimit, request)
          : contextOnlyState(request.userId, request.context, 0),
        model.items ? model.items.read(this.features, itemIds) : undefined,
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
        `feature service at ${this.config.featuresAddress} failed (${status[code]}: ${detail}); pre-ranking does not score without features`,
        { cause: error },
      );
    }
  }
}
