import type { ItemReadObserver, ItemTableObserver, ModelReloadEvent } from '@recsys/serving';
import type { ServiceMetrics } from '@recsys/service-kit';

/**
 * The pre-ranking stage's metrics: model reloads, candidates without a two-tower vector, where user
 * embeddings came from, and the item cache, registered in the service's own registry before it starts
 * (the first model load is counted too).
 */
export class PrerankingMetrics implements ItemReadObserver, ItemTableObserver {
  private readonly reloads;
  private readonly unknown;
  private readonly userEmbeddings;
  private readonly cacheHits;
  private readonly cacheMisses;
  private readonly cacheItems;
  private readonly tableHits;
  private readonly tableItems;

  constructor(metrics: ServiceMetrics) {
    this.reloads = metrics.counter('preranking_model_reloads_total', 'Model versions loaded or refused', ['outcome']);
    this.unknown = metrics.counter(
      'preranking_unknown_items_total',
      'Candidates the two-tower has no vector for, scored with a zero item embedding',
    );
    this.userEmbeddings = metrics.counter(
      'preranking_user_embeddings_total',
      'User embeddings by source: the request (retrieval) or computed here',
      ['source'],
    );
    this.cacheHits = metrics.counter('preranking_item_cache_hits_total', 'Candidates whose encoded features came from the item cache');
    this.cacheMisses = metrics.counter(
      'preranking_item_cache_misses_total',
      'Candidates read from the feature service (not cached, expired, or the cache is off)',
    );
    this.cacheItems = metrics.gauge('preranking_item_cache_items', 'Items in the item cache of the serving model version');
    this.tableHits = metrics.counter('preranking_item_table_hits_total', 'Candidates whose encoded features came from the item table');
    this.tableItems = metrics.gauge('preranking_item_table_items', 'Items in the item table of the serving model version');
  }

  reload(event: ModelReloadEvent): void {
    this.reloads.inc({ outcome: event.outcome });
  }

  unknownItems(count: number): void {
    this.unknown.inc(count);
  }

  userEmbedding(source: 'request' | 'computed'): void {
    this.userEmbeddings.inc({ source });
  }

  itemsRead(hits: number, misses: number, cached: number): void {
    if (hits > 0) this.cacheHits.inc(hits);
    if (misses > 0) this.cacheMisses.inc(misses);
    this.cacheItems.set(cached);
  }

  itemTableRead(hits: number, size: number): void {
    if (hits > 0) this.tableHits.inc(hits);
    this.tableItems.set(size);
  }
}
