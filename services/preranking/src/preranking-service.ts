import type { MessageInitShape } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import { common, type preranking } from '@recsys/contracts';
import { grpcStatusOf, InvalidArgumentError, type Logger, ServiceError, UnavailableError } from '@recsys/service-kit';
import { type FeatureReader, type FeatureRow, type ModelWatcher, contextOnlyState, readItemRows, readUserState } from '@recsys/serving';
import type { PrerankingConfig } from './config.js';
import type { PrerankerModel } from './preranker-model.js';
import type { PrerankingMetrics } from './preranking-metrics.js';
import { checkPrerankRequest } from './validation.js';

type PrerankResponseInit = MessageInitShape<typeof preranking.PrerankResponseSchema>;
type CandidateInit = MessageInitShape<typeof common.CandidateSchema>;

/** The caller's deadline passed while the features were read. */
class DeadlineExceededError extends ServiceError {
  readonly code = status.DEADLINE_EXCEEDED;
}

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
    private readonly features: FeatureReader,
    private readonly config: PrerankingConfig,
    private readonly logger: Logger,
    private readonly metrics?: PrerankingMetrics,
  ) {}

  async prerank(request: preranking.PrerankRequest): Promise<PrerankResponseInit> {
    const { itemIds, keep } = checkPrerankRequest(request, this.config);
    const lease = this.models.acquire();
    try {
      const model = lease.model;
      const given = this.givenEmbedding(request, model);
      const historyLength = given ? 0 : model.userTower.historyLength;
      const [state, items] = await this.readFeatures(request, itemIds, model, historyLength, given !== undefined);
      const embedding = given ?? (await model.userTower.embed([state]));
      const { scores, unknown } = await model.score(embedding, itemIds, { user: state.user, context: state.context, items });
      if (unknown.length > 0) {
        // Kept with a zero vector: the continuous features still score them, and a new item gets its chance.
        this.metrics?.unknownItems(unknown.length);
        this.logger.warn(
          { twoTower: model.twoTowerVersion, count: unknown.length, itemIds: unknown.slice(0, LOGGED_IDS) },
          `${unknown.length} candidates have no two-tower v${model.twoTowerVersion} vector; scored with a zero item embedding`,
        );
      }
      this.metrics?.userEmbedding(given ? 'request' : 'computed');
      return { candidates: top(request, scores, keep), modelVersion: model.version };
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
   * the user) and the candidates' item rows, read concurrently. Without the feature service there is no
   * answer (UNAVAILABLE): the caller keeps the retrieval order rather than scores of default features.
   */
  private async readFeatures(
    request: preranking.PrerankRequest,
    itemIds: string[],
    model: PrerankerModel,
    historyLength: number,
    embedded: boolean,
  ): Promise<[ReturnType<typeof contextOnlyState>, FeatureRow[] | undefined]> {
    const needUser = !embedded || model.reads('user');
    const historyLimit = historyLength === 0 ? 1 : historyLength + Math.min(historyLength, request.context?.recentItems.length ?? 0);
    try {
      return await Promise.all([
        needUser
          ? readUserState(this.features, request.userId, request.context, historyLength, historyLimit)
          : contextOnlyState(request.userId, request.context, 0),
        model.reads('item') ? readItemRows(this.features, itemIds).then((read) => read.rows) : undefined,
      ]);
    } catch (error) {
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

/** The `keep` best candidates (ties keep the caller's order), each with its pre-ranking score appended. */
function top(request: preranking.PrerankRequest, scores: Float32Array, keep: number): CandidateInit[] {
  const n = scores.length;
  const order = new Array<number>(n);
  for (let k = 0; k < n; k++) order[k] = k;
  order.sort((a, b) => scores[b]! - scores[a]! || a - b);
  const out = new Array<CandidateInit>(keep);
  for (let r = 0; r < keep; r++) {
    const k = order[r]!;
    const candidate = request.candidates[k]!;
    const score = scores[k]!;
    out[r] = {
      itemId: candidate.itemId,
      score,
      channels: candidate.channels,
      stageScores: [...candidate.stageScores, { stage: common.Stage.PRERANKING, score }],
      category: candidate.category,
    };
  }
  return out;
}
