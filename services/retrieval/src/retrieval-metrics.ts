import type { ServiceMetrics } from '@recsys/service-kit';
import type { VectorStore } from '@recsys/vector-index';
import type { ChannelName } from './channels/channel.js';

export type ChannelOutcome = 'ok' | 'error' | 'timeout' | 'skipped';

/** Per-channel latency, outcomes and candidates returned; cold starts; index swaps; in the service's own registry. */
export class RetrievalMetrics {
  private readonly channelSeconds;
  private readonly channelCalls;
  private readonly channelReturned;
  private readonly coldStarts;
  private readonly userStateFailures;
  private readonly swaps;

  constructor(private readonly metrics: ServiceMetrics) {
    this.channelSeconds = metrics.histogram(
      'retrieval_channel_duration_seconds',
      'Time a retrieval channel took, by channel',
      ['channel'],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    );
    this.channelCalls = metrics.counter('retrieval_channel_calls_total', 'Retrieval channel runs by channel and outcome', [
      'channel',
      'outcome',
    ]);
    this.channelReturned = metrics.counter('retrieval_channel_returned_total', 'Candidates a channel contributed to merging', ['channel']);
    this.coldStarts = metrics.counter('retrieval_cold_starts_total', 'Requests for users the feature service did not know');
    this.userStateFailures = metrics.counter(
      'retrieval_user_state_failures_total',
      'Requests served on the context alone because the user-state read failed',
    );
    this.swaps = metrics.counter('retrieval_index_swaps_total', 'Index versions taken up (ok) or refused (refused)', ['outcome']);
  }

  channel(channel: ChannelName, outcome: ChannelOutcome, seconds: number, returned: number): void {
    this.channelCalls.inc({ channel, outcome });
    if (outcome === 'skipped') return;
    this.channelSeconds.observe({ channel }, seconds);
    this.channelReturned.inc({ channel }, returned);
  }

  coldStart(): void {
    this.coldStarts.inc();
  }

  userStateFailure(): void {
    this.userStateFailures.inc();
  }

  indexSwap(outcome: 'ok' | 'refused'): void {
    this.swaps.inc({ outcome });
  }

  /**
   * The serving store's item-to-item neighbour cache (embedded index only): `retrieval_item_to_item_cache_items` and
   * `retrieval_item_to_item_cache_hit_ratio`, the share of seed searches it answered since that index version opened.
   */
  watchNeighbourCache(store: () => VectorStore): void {
    const { metrics } = this;
    const stats = () => store().neighbourCacheStats?.() ?? { hits: 0, misses: 0, items: 0 };
    metrics.sampledGauge(
      'retrieval_item_to_item_cache_items',
      'Seeds whose graph neighbours the serving embedded index keeps',
      () => stats().items,
    );
    metrics.sampledGauge(
      'retrieval_item_to_item_cache_hit_ratio',
      'Share of item-to-item seed searches the serving embedded index answered from its neighbour cache since that version opened',
      () => {
        const { hits, misses } = stats();
        return hits + misses === 0 ? 0 : hits / (hits + misses);
      },
    );
  }

  /**
   * The serving store's graph-search threads (INDEX_SEARCH_WORKERS; 0 everywhere without them):
   * `retrieval_search_worker_threads` answering now, and since that index version opened the searches no thread
   * answered (`retrieval_search_worker_fallbacks`, searched on the event loop instead) and the threads started again
   * after one died (`retrieval_search_worker_restarts`).
   */
  watchSearchWorkers(store: () => VectorStore): void {
    const { metrics } = this;
    const stats = () => store().searchWorkerStats?.() ?? { threads: 0, starting: 0, searched: 0, scored: 0, failed: 0, restarts: 0 };
    metrics.sampledGauge(
      'retrieval_search_worker_threads',
      'Graph-search threads of the serving embedded index answering now',
      () => stats().threads,
    );
    metrics.sampledGauge(
      'retrieval_search_worker_fallbacks',
      'Graph searches no search thread answered since the serving index version opened (searched on the event loop)',
      () => stats().failed,
    );
    metrics.sampledGauge(
      'retrieval_search_worker_restarts',
      'Search threads of the serving index version started again after one died',
      () => stats().restarts,
    );
  }
}
