import type { ModelReloadEvent } from '@recsys/serving';
import type { ServiceMetrics } from '@recsys/service-kit';
import type { BatchObserver, RejectReason } from './inference-batcher.js';

interface CounterLike {
  inc(labels: Record<string, string>, value?: number): void;
}
interface HistogramLike {
  observe(value: number): void;
}
type MetricClass<M> = new (config: { name: string; help: string; labelNames?: string[]; buckets?: number[]; registers: unknown[] }) => M;

const MS_BUCKETS = [0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const ROW_BUCKETS = [1, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];

interface Exported {
  batchRows: HistogramLike;
  batchRequests: HistogramLike;
  queueWait: HistogramLike;
  inference: HistogramLike;
  rejected: CounterLike;
  reloads: CounterLike;
  missingItems: CounterLike;
}

/**
 * The ranking stage's metrics: batch sizes, queue wait, inference time, rejections, model reloads and
 * missing items. They join the service's Prometheus registry once it exists (`attach`); what happened
 * before (the first model load) is counted then.
 */
export class RankingMetrics implements BatchObserver {
  private exported: Exported | undefined;
  private readonly early: ModelReloadEvent[] = [];

  attach(serviceMetrics: ServiceMetrics): void {
    // prom-client's classes, reached through the service's own metrics: the stage does not depend on prom-client itself.
    const Counter = serviceMetrics.handled.constructor as MetricClass<CounterLike>;
    const Histogram = serviceMetrics.latency.constructor as MetricClass<HistogramLike>;
    const registers = [serviceMetrics.registry];
    this.exported = {
      batchRows: new Histogram({ name: 'ranking_batch_rows', help: 'Candidates per inference run', buckets: ROW_BUCKETS, registers }),
      batchRequests: new Histogram({
        name: 'ranking_batch_requests',
        help: 'Requests (or chunks of one) per inference run',
        buckets: [1, 2, 4, 8, 16, 32, 64],
        registers,
      }),
      queueWait: new Histogram({
        name: 'ranking_queue_wait_seconds',
        help: 'Time from queueing to the start of the first run',
        buckets: MS_BUCKETS,
        registers,
      }),
      inference: new Histogram({
        name: 'ranking_inference_seconds',
        help: 'Duration of one inference run',
        buckets: MS_BUCKETS,
        registers,
      }),
      rejected: new Counter({
        name: 'ranking_rejected_total',
        help: 'Requests refused with RESOURCE_EXHAUSTED, by reason',
        labelNames: ['reason'],
        registers,
      }),
      reloads: new Counter({
        name: 'ranking_model_reloads_total',
        help: 'Model versions loaded or refused',
        labelNames: ['outcome'],
        registers,
      }),
      missingItems: new Counter({
        name: 'ranking_missing_items_total',
        help: 'Candidates without stored features, scored on defaults',
        registers,
      }),
    };
    for (const event of this.early.splice(0)) this.reload(event);
  }

  run(rows: number, requests: number, ms: number): void {
    this.exported?.batchRows.observe(rows);
    this.exported?.batchRequests.observe(requests);
    this.exported?.inference.observe(ms / 1000);
  }

  queueWait(ms: number): void {
    this.exported?.queueWait.observe(ms / 1000);
  }

  rejected(reason: RejectReason): void {
    this.exported?.rejected.inc({ reason });
  }

  reload(event: ModelReloadEvent): void {
    if (this.exported) this.exported.reloads.inc({ outcome: event.outcome });
    else this.early.push(event);
  }

  missingItems(count: number): void {
    if (count > 0) this.exported?.missingItems.inc({}, count);
  }
}
