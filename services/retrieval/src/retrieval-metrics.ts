import type { ServiceMetrics } from '@recsys/service-kit';
import type { ChannelName } from './channels/channel.js';

type Registry = ServiceMetrics['registry'];
type Labels = Record<string, string>;

interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

/**
 * A labelled series in prom-client's collector shape (name, help, type, get, reset), so the service's own
 * registry exposes it; prom-client itself is service-kit's dependency, not this package's.
 */
abstract class Series {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
  ) {}
  abstract get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: 'sum' }>;
  abstract reset(): void;
}

const key = (labels: Labels) => JSON.stringify(Object.entries(labels).sort());

class CounterSeries extends Series {
  private readonly values = new Map<string, MetricValue>();
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  inc(labels: Labels, by = 1): void {
    const k = key(labels);
    const entry = this.values.get(k);
    if (entry) entry.value += by;
    else this.values.set(k, { labels, value: by });
  }
  get() {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values: [...this.values.values()],
      aggregator: 'sum' as const,
    });
  }
  reset(): void {
    this.values.clear();
  }
}

class HistogramSeries extends Series {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    name: string,
    help: string,
    private readonly buckets: readonly number[],
  ) {
    super(name, help, 'histogram');
  }
  observe(labels: Labels, value: number): void {
    const k = key(labels);
    let entry = this.series.get(k);
    if (!entry) {
      entry = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, entry);
    }
    for (let b = 0; b < this.buckets.length; b++) if (value <= this.buckets[b]!) entry.counts[b]!++;
    entry.sum += value;
    entry.count++;
  }
  get() {
    const values: MetricValue[] = [];
    for (const { labels, counts, sum, count } of this.series.values()) {
      this.buckets.forEach((le, b) =>
        values.push({ labels: { ...labels, le: String(le) }, value: counts[b]!, metricName: `${this.name}_bucket` }),
      );
      values.push({ labels: { ...labels, le: '+Inf' }, value: count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' as const });
  }
  reset(): void {
    this.series.clear();
  }
}

export type ChannelOutcome = 'ok' | 'error' | 'timeout' | 'skipped';

/** Per-channel latency, outcomes and candidates returned; cold starts; index swaps. */
export class RetrievalMetrics {
  private readonly channelSeconds = new HistogramSeries(
    'retrieval_channel_duration_seconds',
    'Time a retrieval channel took, by channel',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  );
  private readonly channelCalls = new CounterSeries('retrieval_channel_calls_total', 'Retrieval channel runs by channel and outcome');
  private readonly channelReturned = new CounterSeries('retrieval_channel_returned_total', 'Candidates a channel contributed to merging');
  private readonly coldStarts = new CounterSeries('retrieval_cold_starts_total', 'Requests for users the feature service did not know');
  private readonly featureFailures = new CounterSeries(
    'retrieval_user_state_failures_total',
    'Requests served on the context alone because the user-state read failed',
  );
  private readonly swaps = new CounterSeries('retrieval_index_swaps_total', 'Index versions taken up (ok) or refused (refused)');

  /** Adds the series to the service's registry (served on /metrics). */
  register(registry: Registry): void {
    for (const series of [
      this.channelSeconds,
      this.channelCalls,
      this.channelReturned,
      this.coldStarts,
      this.featureFailures,
      this.swaps,
    ]) {
      // The registry only reads name, type, get() and reset(): the collector shape above.
      registry.registerMetric(series as unknown as Parameters<Registry['registerMetric']>[0]);
    }
  }

  channel(channel: ChannelName, outcome: ChannelOutcome, seconds: number, returned: number): void {
    this.channelCalls.inc({ channel, outcome });
    if (outcome === 'skipped') return;
    this.channelSeconds.observe({ channel }, seconds);
    this.channelReturned.inc({ channel }, returned);
  }

  coldStart(): void {
    this.coldStarts.inc({});
  }

  userStateFailure(): void {
    this.featureFailures.inc({});
  }

  indexSwap(outcome: 'ok' | 'refused'): void {
    this.swaps.inc({ outcome });
  }
}
