import { common, retrieval, type features } from '@recsys/contracts';
import { encodeNewCandidates, type Logger, type ServiceClient } from '@recsys/service-kit';
import { CandidateList, readStageAnswer } from './candidate-wire.js';
import type { GatewayMetrics } from './gateway-metrics.js';

type FeatureClient = Pick<ServiceClient<typeof features.FeatureService.method>, 'getPopularItems'>;

export interface PopularAnswer {
  /** As retrieval's answer would hold them: the bytes the stages get. */
  candidates: CandidateList;
  /** live: asked the feature service now; cached: the last refreshed list; none: neither could serve the request. */
  source: 'live' | 'cached' | 'none';
  detail: string;
}

const POPULAR = ['popular'];

/**
 * Popular items as retrieval's popular channel answers them (channel "popular", the score as retrieval's), written
 * straight to Candidate bytes: building a thousand Candidate messages only to serialise them cost the gateway about
 * 1.4 ms of CPU per answer, on the path every answer takes while retrieval is down.
 */
function popularList(items: readonly { itemId: string; score: number }[]): CandidateList {
  if (items.length === 0) return CandidateList.empty;
  const candidates = {
    itemIds: items.map((item) => item.itemId),
    scores: items.map((item) => item.score),
    channels: items.map(() => POPULAR),
    categories: items.map(() => ''),
  };
  return readStageAnswer(encodeNewCandidates(retrieval.RetrieveResponseSchema, common.Stage.RETRIEVAL, candidates), 'retrieve').candidates;
}

/**
 * Popular items for when retrieval fails: asked of the feature service within what is left of the budget,
 * else a list refreshed in the background, so even with both down a request without category filters gets items.
 */
export class PopularFallback {
  /** The last refreshed list, written once per refresh. */
  private cached = CandidateList.empty;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: FeatureClient,
    private readonly options: { limit: number; refreshMs: number; timeoutMs: number },
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    try {
      const answer = await this.client.getPopularItems({ limit: this.options.limit }, { timeoutMs: this.options.timeoutMs });
      this.cached = popularList(answer.items);
      this.metrics.popularFallbackRefreshes.inc({ outcome: 'ok' });
    } catch (error) {
      this.metrics.popularFallbackRefreshes.inc({ outcome: 'failed' });
      this.logger.debug({ err: error }, 'popular fallback refresh failed; keeping the last list');
    }
  }

  async candidates(
    limit: number,
    filter: common.ItemFilter | undefined,
    exclude: ReadonlySet<string>,
    timeoutMs: number,
  ): Promise<PopularAnswer> {
    if (timeoutMs > 0) {
      try {
        const answer = await this.client.getPopularItems(
          {
            limit,
            filter: {
              includeCategories: filter?.includeCategories ?? [],
              excludeCategories: filter?.excludeCategories ?? [],
              excludeItemIds: [...exclude],
            },
          },
          { timeoutMs },
        );
        return { candidates: popularList(answer.items), source: 'live', detail: 'popular items' };
      } catch (error) {
        this.logger.debug({ err: error }, 'live popular items failed; using the cached list');
      }
    }
    // The cached list has no categories, so it cannot honour a category filter.
    if ((filter?.includeCategories.length ?? 0) > 0 || (filter?.excludeCategories.length ?? 0) > 0) {
      return {
        candidates: CandidateList.empty,
        source: 'none',
        detail: 'no fallback: the feature service failed and the request filters by category',
      };
    }
    const { ids } = this.cached;
    const kept: number[] = [];
    for (let i = 0; i < ids.length && kept.length < limit; i++) if (!exclude.has(ids[i]!)) kept.push(i);
    const candidates = this.cached.pick(kept);
    return { candidates, source: candidates.length > 0 ? 'cached' : 'none', detail: 'cached popular items' };
  }
}
