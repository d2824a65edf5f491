import type { ItemReadObserver, ItemTableObserver, ModelReloadEvent } from '@recsys/serving';
import type { ServiceMetrics } from '@recsys/service-kit';
import type { BatchObserver, RejectReason } from './inference-batcher.js';

const MS_BUCKETS = [0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const ROW_BUCKETS = [1, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];

/**
 * The ranking stage's metrics: batch sizes, queue wait, inference time, rejections, model reloads, missing
 * items and the item cache, registered in the service's own registry before it starts (the first model
 * load is counted too).
 */
export class RankingMetrics implements BatchObserver, ItemReadObserver, ItemTableObserver {
  private readonly batchRows;
  private readonly batchRequests;
  private readonly queueWaitSeconds;
  private readonly inference;
  private readonly rejections;
  private readonly reloads;
  private readonly missing;
  private readonly cacheHits;
  private readonly cacheMisses;
  private readonly cacheItems;
  private readonly tableHits;
  private readonly tableItems;

  constructor(metrics: ServiceMetrics) {
    this.batchRows = metrics.histogram('ranking_batch_rows', 'Candidates per inference run', [], ROW_BUCKETS);
    this.batchRequests = metrics.histogram(
      'ranking_batch_requests',
      'Requests (or chunks of one) per inference run',
      [],
      [1, 2, 4, 8, 16, 32, 64],
    );
    this.queueWaitSeconds = metrics.histogram(
      'ranking_queue_wait_seconds',
      'Time from queueing to the start of the first run',
      [],
      MS_BUCKETS,
    );
    this.inference = metrics.histogram('ranking_inference_seconds', 'Duration of one inference run', [], MS_BUCKETS);
    this.rejections = metrics.counter('ranking_rejected_total', 'Requests refused with RESOURCE_EXHAUSTED, by reason', ['reason']);
    this.reloads = metrics.counter('ranking_model_reloads_total', 'Model versions loaded or refused', ['outcome']);
    this.missing = metrics.counter('ranking_missing_items_total', 'Candidates without stored features, scored on defaults');
    this.cacheHits = metrics.counter('ranking_item_cache_hits_total', 'Candidates whose encoded features came from the item cache');
    this.cacheMisses = metrics.counter(
      'ranking_item_cache_misses_total',
      'Candidates read from the feature service (not cached, expired, or the cache is off)',
    );
    this.cacheItems = metrics.gauge('ranking_item_cache_items', 'Items in the item cache of the serving model version');
    this.tableHits = metrics.counter('ranking_item_table_hits_total', 'Candidates whose encoded features came from the item table');
    this.tableItems = metrics.gauge('ranking_item_table_items', 'Items in the item table of the serving model version');
  }

  run(rows: number, requests: number, ms: number): void {
    this.batchRows.observe(rows);
    this.batchRequests.observe(requests);
    this.inference.observe(ms / 1000);
  }

  queueWait(ms: number): void {
    this.queueWaitSeconds.observe(ms / 1000);
  }

  rejected(reason: RejectReason): void {
    this.rejections.inc({ reason });
  }

  reload(event: ModelReloadEvent): void {
    this.reloads.inc({ outcome: event.outcome });
  }

  missingItems(count: number): void {
    if (count > 0) this.missing.inc(count);
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
