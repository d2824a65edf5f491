import { create } from '@bufbuild/protobuf';
import { common, type features } from '@recsys/contracts';
import type { Logger, ServiceClient } from '@recsys/service-kit';
import type { GatewayMetrics } from './gateway-metrics.js';

type FeatureClient = Pick<ServiceClient<typeof features.FeatureService.method>, 'getPopularItems'>;

export interface PopularAnswer {
  candidates: common.Candidate[];
  /** live: asked the feature service now; cached: the last refreshed list; none: neither could serve the request. */
  source: 'live' | 'cached' | 'none';
  detail: string;
}

const candidate = (itemId: string, score: number): common.Candidate =>
  create(common.CandidateSchema, { itemId, score, channels: ['popular'], stageScores: [{ stage: common.Stage.RETRIEVAL, score }] });

/**
 * Popular items for when retrieval fails: asked of the feature service within what is left of the budget,
 * else a list refreshed in the background, so even with both down a request without category filters gets items.
 */
export class PopularFallback {
  private cached: { itemId: string; score: number }[] = [];
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
      this.cached = answer.items.map((item) => ({ itemId: item.itemId, score: item.score }));
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
        return { candidates: answer.items.map((item) => candidate(item.itemId, item.score)), source: 'live', detail: 'popular items' };
      } catch (error) {
        this.logger.debug({ err: error }, 'live popular items failed; using the cached list');
      }
    }
    // The cached list has no categories, so it cannot honour a category filter.
    if ((filter?.includeCategories.length ?? 0) > 0 || (filter?.excludeCategories.length ?? 0) > 0) {
      return { candidates: [], source: 'none', detail: 'no fallback: the feature service failed and the request filters by category' };
    }
    const out: common.Candidate[] = [];
    for (const item of this.cached) {
      if (out.length >= limit) break;
      if (!exclude.has(item.itemId)) out.push(candidate(item.itemId, item.score));
    }
    return { candidates: out, source: out.length > 0 ? 'cached' : 'none', detail: 'cached popular items' };
  }
}
