import { create, toBinary } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import { common, features, gateway, retrieval, type preranking, type ranking, type reranking } from '@recsys/contracts';
import {
  currentRequestContext,
  grpcStatusOf,
  InvalidArgumentError,
  LogRateLimiter,
  NotFoundError,
  UnavailableError,
  type Logger,
  type ServiceClient,
} from '@recsys/service-kit';
import type { AdaptiveCounts, CandidateCounts } from './adaptive-counts.js';
import { CircuitBreaker } from './circuit-breaker.js';
import {
  type CandidateList,
  decodeChannels,
  decodeRules,
  encodeContext,
  type PassedUserBytes,
  withPassedUser,
  readStageAnswer,
  writeStageRequest,
  type StageAnswerKind,
} from './candidate-wire.js';
import { RequestBudget, requestBudgetMs } from './budget.js';
import { RETRIEVAL_CHANNELS, STAGE_NAMES, type GatewayConfig, type StageName } from './config.js';
import { causeLabel, causeOf, detailOf } from './degradation.js';
import type { Caller, GatewayApi } from './gateway-api.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import type { ImpressionLog } from './impression-log.js';
import type { PopularFallback } from './popular-fallback.js';
import { validateFeedbackRequest, validateFunnel, validateRecommendRequest, validateSimilarRequest, withEventIds } from './validation.js';

/** An INVALID_ARGUMENT message of service-kit's InvalidArgumentError: "field.path: problem". */
const FIELD_PROBLEM = /^([\w.[\]-]+): ([\s\S]+)$/;

export interface StageClients {
  features: ServiceClient<typeof features.FeatureService.method>;
  retrieval: ServiceClient<typeof retrieval.RetrievalService.method>;
  preranking: ServiceClient<typeof preranking.PrerankingService.method>;
  ranking: ServiceClient<typeof ranking.RankingService.method>;
  reranking: ServiceClient<typeof reranking.RerankingService.method>;
}

const STAGE: Record<StageName, common.Stage> = {
  retrieval: common.Stage.RETRIEVAL,
  preranking: common.Stage.PRERANKING,
  ranking: common.Stage.RANKING,
  reranking: common.Stage.RERANKING,
};

/** What replaces each stage's answer when it fails, as the response names it. */
const FALLBACK: Record<StageName, string> = {
  retrieval: 'popular items',
  preranking: 'retrieval order',
  ranking: 'pre-ranking order',
  reranking: 'ranked order',
};

type StageResult<T> = { ok: true; value: T; ms: number } | { ok: false; ms: number; cause: common.DegradationCause; detail: string };

/** One request on its way through the stages: the candidates so far and what the answer will report. */
class Trace {
  readonly timings: common.StageTiming[] = [];
  readonly degradations: common.Degradation[] = [];
  readonly debug: gateway.StageDebug[] = [];
  /** The versions the stages that answered reported (empty where one degraded). */
  readonly versions = { retrievalModel: '', index: '', prerankingModel: '', rankingModel: '' };

  constructor(readonly wantDebug: boolean) {}

  stage(stage: StageName, ms: number, input: number, output: CandidateList, rules: readonly Uint8Array[] = []): void {
    this.timings.push(
      create(common.StageTimingSchema, { stage: STAGE[stage], durationMs: ms, candidatesIn: input, candidatesOut: output.length }),
    );
    if (this.wantDebug) {
      this.debug.push(create(gateway.StageDebugSchema, { stage: STAGE[stage], candidates: output.decodeAll(), rules: decodeRules(rules) }));
    }
  }

  degrade(stage: StageName, cause: common.DegradationCause, detail: string, fallback = FALLBACK[stage]): void {
    this.degradations.push(create(common.DegradationSchema, { stage: STAGE[stage], cause, detail, fallback }));
  }
}

const toItem = (c: common.Candidate): gateway.RecommendedItem =>
  create(gateway.RecommendedItemSchema, { itemId: c.itemId, score: c.score, category: c.category, channels: c.channels });

/**
 * Runs retrieval → pre-ranking → ranking → re-ranking within one budget. Each stage gets a gRPC deadline
 * from what is left; a stage that fails, is late, or has no time left is replaced by its fallback and
 * reported, so the request itself never fails for a stage.
 */
export class Orchestrator implements GatewayApi {
  private readonly breakers: Record<StageName, CircuitBreaker>;
  /** One "answered with fallbacks" line per degraded answer would flood the log under overload. */
  private readonly degradedLog: LogRateLimiter;
  private readonly stageCalls: Record<
    Exclude<StageName, 'retrieval'>,
    [call: (body: Uint8Array, options: { timeoutMs: number }) => Promise<Uint8Array>, kind: StageAnswerKind]
  >;

  constructor(
    private readonly clients: StageClients,
    private readonly config: GatewayConfig,
    private readonly adaptive: AdaptiveCounts,
    private readonly popular: PopularFallback,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    private readonly impressions?: ImpressionLog,
    /**
     * The event-loop lag now, ms (admission control's sampler): about how long a request waited before this process
     * read it, which its caller waits too. The budget counts from that much before it was received.
     */
    private readonly lagMs: () => number = () => 0,
  ) {
    const breaker = (stage: StageName) =>
      new CircuitBreaker(config.breaker, (state) => {
        metrics.circuitOpen.set({ stage }, state === 'open' ? 1 : 0);
        if (state === 'open') {
          metrics.circuitOpens.inc({ stage });
          logger.warn(
            { stage, failures: config.breaker.failures, openMs: config.breaker.openMs },
            'stage keeps failing: skipped for a cool-down',
          );
        } else {
          logger.info({ stage }, 'stage answers again');
        }
      });
    this.breakers = {
      retrieval: breaker('retrieval'),
      preranking: breaker('preranking'),
      ranking: breaker('ranking'),
      reranking: breaker('reranking'),
    };
    for (const stage of STAGE_NAMES) metrics.circuitOpen.set({ stage }, 0);
    this.degradedLog = new LogRateLimiter({
      ...config.degradedLog,
      onSuppressed: ({ key, suppressed, windowMs }) =>
        logger.warn({ degraded: key, suppressed, windowMs }, `answered with fallbacks: ${suppressed} more lines for ${key} left out`),
    }).start();
    this.stageCalls = {
      preranking: [(body, options) => clients.preranking.raw('prerank', body, options), 'prerank'],
      ranking: [(body, options) => clients.ranking.raw('rank', body, options), 'rank'],
      reranking: [(body, options) => clients.reranking.raw('rerank', body, options), 'rerank'],
    };
  }

  async recommend(request: gateway.RecommendRequest, caller: Caller): Promise<gateway.RecommendResponse> {
    validateRecommendRequest(request, this.config.limits);
    const started = performance.now();
    const requestContext = currentRequestContext();
    // The budget counts from when the transport received the request: the time it waited for an admission slot (and
    // for its body) is part of what its caller waits, so the stages get what is left of it. So is the wait before the
    // process read it, about its event-loop lag.
    const budget = new RequestBudget(
      requestBudgetMs(request.budgetMs, this.config.budget),
      this.config.budget,
      Math.min(Date.now(), requestContext?.receivedMs ?? Infinity) - this.lagMs(),
      requestContext?.deadlineMs ?? Infinity,
      Date.now,
      this.lagMs,
    );
    const trace = new Trace(request.debug);
    const k = request.k > 0 ? request.k : this.config.limits.defaultK;
    const { retrieveCount, rankCount, pool } = this.funnel(request.funnel, k);
    const userId = request.userId;
    const context = request.context ?? create(common.UserContextSchema);
    const filter = request.filter;
    // Never answer with what the user is looking at or the caller excluded, whatever stage degraded.
    const excluded = new Set<string>([...context.recentItems.map((item) => item.itemId), ...(filter?.excludeItemIds ?? [])]);

    // The user's features and history, read once and passed to every stage as the bytes they came in.
    const user = await this.readUser(userId, budget);

    // Retrieval; popular items when it fails. Candidates then travel as the bytes they came in (CandidateList).
    let candidates: CandidateList;
    let userEmbedding: number[] = [];
    let embeddingModelVersion = '';
    const retrieveRequest = withPassedUser(
      toBinary(
        retrieval.RetrieveRequestSchema,
        create(retrieval.RetrieveRequestSchema, { userId, context, limit: retrieveCount, quotas: this.quotas(retrieveCount), filter }),
      ),
      user,
    );
    const retrieved = await this.run('retrieval', budget, async (timeoutMs) =>
      readStageAnswer(await this.clients.retrieval.raw('retrieve', retrieveRequest, { timeoutMs }), 'retrieve'),
    );
    if (retrieved.ok) {
      candidates = retrieved.value.candidates;
      userEmbedding = retrieved.value.userEmbedding;
      embeddingModelVersion = retrieved.value.modelVersion;
      trace.versions.retrievalModel = retrieved.value.modelVersion;
      trace.versions.index = retrieved.value.indexVersion;
      this.reportChannels(trace, retrieved.value.channels);
    } else {
      const popularMs = Math.min(this.config.featuresTimeoutMs, budget.remainingMs());
      const popular = await this.popular.candidates(retrieveCount, filter, excluded, budget.affords(popularMs) ? popularMs : 0);
      candidates = popular.candidates;
      trace.degrade('retrieval', retrieved.cause, retrieved.detail, popular.detail);
    }
    trace.stage('retrieval', retrieved.ms, 0, candidates);

    const contextBytes = encodeContext(request.context);
    const stageRequest = (input: CandidateList, limit: number, embedding?: { userEmbedding: number[]; embeddingModelVersion: string }) =>
      writeStageRequest({ userId, user, context: contextBytes, candidates: input, limit, ...embedding });

    // Pre-ranking (retrieval order cut to the ranked count when it fails), ranking into the re-ranking pool
    // (pre-ranking order when it fails), re-ranking over the pool (ranked order when it fails).
    if (candidates.length > 0) {
      const body = stageRequest(candidates, rankCount, { userEmbedding, embeddingModelVersion });
      candidates = await this.step(trace, budget, 'preranking', candidates, body, candidates.slice(rankCount));
    }
    if (candidates.length > 0)
      candidates = await this.step(trace, budget, 'ranking', candidates, stageRequest(candidates, pool), candidates);
    if (candidates.length > 0) {
      const input = candidates.slice(pool);
      candidates = await this.step(trace, budget, 'reranking', input, stageRequest(input, k), input);
    }

    const items: gateway.RecommendedItem[] = [];
    for (let i = 0; i < candidates.length && items.length < k; i++) {
      if (!excluded.has(candidates.ids[i]!)) items.push(toItem(candidates.decode(i)));
    }
    const totalMs = performance.now() - started;
    this.metrics.recommendSeconds.observe({ degraded: trace.degradations.length > 0 ? 'true' : 'false' }, totalMs / 1000);
    if (trace.degradations.length > 0) {
      const degraded = trace.degradations.map((d) => `${common.Stage[d.stage]}: ${causeLabel(d.cause)}`);
      // Written while one of its (stage, cause) pairs is within its quota for the window; the rest are counted.
      let write = false;
      for (const key of new Set(degraded)) write = this.degradedLog.allow(key) || write;
      if (write) this.logger.warn({ requestId: caller.requestId, degraded }, 'answered with fallbacks');
    }
    // The answer goes to the event log off the request's path (a queue push; sent in batches by a timer).
    this.impressions?.record({
      requestId: caller.requestId,
      userId,
      timestampMs: Date.now(),
      items,
      versions: trace.versions,
      degradations: trace.degradations,
    });
    return create(gateway.RecommendResponseSchema, {
      items,
      requestId: caller.requestId,
      timings: trace.timings,
      degradations: trace.degradations,
      totalMs,
      debug: trace.debug,
    });
  }

  /**
   * The one read of the user for the whole request (GetUserFeatures, USER_HISTORY_LIMIT deep), kept as the bytes
   * the feature service answered. A failed or late read is not a degradation: the stages read the user themselves,
   * each with its own fallback, as when they are called alone. It takes at most a third of retrieval's share.
   */
  private async readUser(userId: string, budget: RequestBudget): Promise<PassedUserBytes | undefined> {
    const historyLimit = this.config.userHistoryLimit;
    if (historyLimit === 0) return undefined;
    const timeoutMs = Math.min(this.config.featuresTimeoutMs, Math.floor(budget.stageTimeoutMs('retrieval') / 3));
    if (!budget.affords(timeoutMs)) {
      this.metrics.userReads.inc({ outcome: 'skipped' });
      return undefined;
    }
    try {
      const request = toBinary(
        features.GetUserFeaturesRequestSchema,
        create(features.GetUserFeaturesRequestSchema, { userId, historyLimit }),
      );
      const state = await this.clients.features.raw('getUserFeatures', request, { timeoutMs });
      this.metrics.userReads.inc({ outcome: 'ok' });
      return { state, historyLimit };
    } catch (error) {
      this.metrics.userReads.inc({ outcome: 'failed' });
      this.logger.debug({ err: error }, 'user read failed: the stages read the user themselves');
      return undefined;
    }
  }

  /**
   * A retrieval channel that failed while the others answered is a partial degradation: listed, with the
   * other channels as what stood in, and counted by channel. A channel skipped by design (cold start) is not.
   */
  private reportChannels(trace: Trace, channels: readonly Uint8Array[]): void {
    for (const report of decodeChannels(channels)) {
      if (report.error === '' || report.error.startsWith('skipped')) continue;
      const timedOut = /timed out|deadline/i.test(report.error);
      const cause = timedOut ? common.DegradationCause.DEADLINE_EXCEEDED : common.DegradationCause.ERROR;
      this.metrics.channelFailures.inc({ channel: report.channel, cause: causeLabel(cause) });
      trace.degrade('retrieval', cause, `retrieval channel ${report.channel}: ${report.error}`, 'the other retrieval channels');
    }
  }

  /** Writes the count of degraded answers left out of the log so far. */
  close(): void {
    this.degradedLog.close();
  }

  /** The adaptive candidate counts new requests use now. */
  candidateCounts(): CandidateCounts {
    return this.adaptive.current();
  }

  /**
   * The request's funnel: what it asked for (validated against the configured maxima), else the adaptive counts and
   * the re-ranking pool max(k × factor, min); never a later stage wider than an earlier one, never narrower than k.
   */
  private funnel(asked: gateway.FunnelSizes | undefined, k: number): { retrieveCount: number; rankCount: number; pool: number } {
    const { retrieveMax, rankMax } = this.config.adaptive;
    validateFunnel(asked, k, { retrieved: retrieveMax, rank: rankMax });
    const counts = this.adaptive.current();
    // A smaller retrieved count than the adaptive pre-ranked one narrows both: pre-ranking cannot keep more than it gets.
    const rankCount = Math.max(asked?.preRanked || Math.min(counts.rank, asked?.retrieved || counts.rank), k);
    const retrieveCount = Math.max(asked?.retrieved || counts.retrieve, rankCount);
    const pool = asked?.ranked || Math.max(k * this.config.rerankPool.factor, this.config.rerankPool.min);
    return { retrieveCount, rankCount, pool };
  }

  /** Each channel's share of the retrieved count, so the channels follow the adaptive count. */
  private quotas(retrieveCount: number): { channel: string; limit: number }[] {
    return RETRIEVAL_CHANNELS.map((channel) => ({
      channel,
      limit: Math.ceil(this.config.adaptive.channelShares[channel] * retrieveCount),
    }));
  }

  /** One of the stages after retrieval: its answer's candidates, or `fallback` (reported) when it fails. */
  private async step(
    trace: Trace,
    budget: RequestBudget,
    stage: Exclude<StageName, 'retrieval'>,
    input: CandidateList,
    body: Uint8Array,
    fallback: CandidateList,
  ): Promise<CandidateList> {
    const [call, kind] = this.stageCalls[stage];
    const result = await this.run(stage, budget, async (timeoutMs) => readStageAnswer(await call(body, { timeoutMs }), kind));
    const output = result.ok ? result.value.candidates : fallback;
    if (!result.ok) trace.degrade(stage, result.cause, result.detail);
    else if (stage === 'preranking') trace.versions.prerankingModel = result.value.modelVersion;
    else if (stage === 'ranking') trace.versions.rankingModel = result.value.modelVersion;
    trace.stage(stage, result.ms, input.length, output, result.ok ? result.value.rules : []);
    return output;
  }

  /** Calls a stage within its share of the budget; skips it when too little is left. Never throws. */
  private async run<T>(stage: StageName, budget: RequestBudget, call: (timeoutMs: number) => Promise<T>): Promise<StageResult<T>> {
    const timeoutMs = budget.stageTimeoutMs(stage);
    if (!budget.affords(timeoutMs)) {
      const cause = common.DegradationCause.BUDGET_EXHAUSTED;
      this.count(stage, cause, 'skipped', 0);
      return { ok: false, ms: 0, cause, detail: `skipped: ${Math.max(0, Math.round(budget.remainingMs()))} ms of the budget left` };
    }
    const breaker = this.breakers[stage];
    if (!breaker.allow()) {
      const cause = common.DegradationCause.UNAVAILABLE;
      this.count(stage, cause, 'skipped', 0);
      const { failures, minFailingMs } = this.config.breaker;
      const detail = `${stage}: skipped: ${failures}+ failures in a row and no answer for ${minFailingMs}+ ms; tried again in ${breaker.retryInMs} ms`;
      return { ok: false, ms: 0, cause, detail };
    }
    const started = performance.now();
    try {
      const value = await call(timeoutMs);
      const ms = performance.now() - started;
      breaker.success();
      this.adaptive.observe(stage, ms);
      this.metrics.stageSeconds.observe({ stage, outcome: 'ok' }, ms / 1000);
      return { ok: true, value, ms };
    } catch (error) {
      const ms = performance.now() - started;
      const cause = causeOf(error);
      // A late or shedding stage is a load signal; a stopped one says nothing about candidate counts.
      if (cause === common.DegradationCause.DEADLINE_EXCEEDED || cause === common.DegradationCause.OVERLOADED)
        this.adaptive.observe(stage, ms);
      // Down, or late although given at least its latency target: a failure of the stage, not of a tight budget.
      const stageFailed =
        cause === common.DegradationCause.UNAVAILABLE ||
        (cause === common.DegradationCause.DEADLINE_EXCEEDED && timeoutMs >= this.config.adaptive.targetMs[stage]);
      if (stageFailed) breaker.failure();
      else breaker.release();
      this.count(stage, cause, 'degraded', ms);
      return { ok: false, ms, cause, detail: `${stage}: ${detailOf(error)}` };
    }
  }

  private count(stage: StageName, cause: common.DegradationCause, outcome: string, ms: number): void {
    this.metrics.degradations.inc({ stage, cause: causeLabel(cause) });
    this.metrics.stageSeconds.observe({ stage, outcome }, ms / 1000);
  }

  async sendFeedback(request: gateway.SendFeedbackRequest, _caller: Caller): Promise<gateway.SendFeedbackResponse> {
    validateFeedbackRequest(request, this.config.limits);
    const events = withEventIds(request).events;
    // An answer still queued for the event log goes first, so the feedback naming it is attributed.
    await this.impressions?.sendPending(events.map((event) => event.requestId));
    try {
      const answer = await this.clients.features.recordFeedback({ events }, { timeoutMs: this.config.featuresTimeoutMs });
      return create(gateway.SendFeedbackResponseSchema, { accepted: answer.accepted, duplicates: answer.duplicates });
    } catch (error) {
      // The feature service's own rules (a timestamp too far in the future) refuse the client's input: a 400 naming
      // the field (the events are forwarded in the request's order, so the paths match), not a retryable outage.
      const refused = grpcStatusOf(error) === status.INVALID_ARGUMENT ? FIELD_PROBLEM.exec(detailOf(error)) : null;
      if (refused) throw new InvalidArgumentError(refused[1]!, refused[2]!);
      // Nothing was half-stored: each event applies atomically and ids make a retry safe.
      throw new UnavailableError(`feedback not recorded, retry: feature service: ${detailOf(error)}`, { cause: error });
    }
  }

  async similarItems(request: gateway.GetSimilarItemsRequest, _caller: Caller): Promise<gateway.GetSimilarItemsResponse> {
    validateSimilarRequest(request, this.config.limits);
    const limit = request.k > 0 ? request.k : this.config.limits.defaultK;
    try {
      const answer = await this.clients.retrieval.getSimilarItems(
        { itemId: request.itemId, limit, filter: request.filter },
        { timeoutMs: this.config.budget.defaultMs },
      );
      return create(gateway.GetSimilarItemsResponseSchema, { items: answer.candidates.map(toItem) });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === status.NOT_FOUND) throw new NotFoundError(detailOf(error));
      if (code === status.INVALID_ARGUMENT) {
        // Retrieval names the field first ("filter.include_categories[0]: ..."); keep it for the caller.
        const detail = detailOf(error);
        const colon = detail.indexOf(':');
        throw colon > 0
          ? new InvalidArgumentError(detail.slice(0, colon), detail.slice(colon + 1).trim())
          : new InvalidArgumentError('request', detail);
      }
      throw new UnavailableError(`similar items unavailable: retrieval: ${detailOf(error)}`, { cause: error });
    }
  }
}
