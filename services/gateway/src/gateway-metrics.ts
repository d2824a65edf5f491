import type { ServiceMetrics } from '@recsys/service-kit';

// prom-client is service-kit's dependency, not the gateway's: name its types through ServiceMetrics.
type Counter = ReturnType<ServiceMetrics['counter']>;
type Histogram = ReturnType<ServiceMetrics['histogram']>;
type Gauge = ReturnType<ServiceMetrics['gauge']>;

/** The gateway's own metrics, in the service's registry. */
export class GatewayMetrics {
  readonly degradations: Counter;
  readonly stageSeconds: Histogram;
  readonly recommendSeconds: Histogram;
  readonly candidateCount: Gauge;
  readonly countChanges: Counter;
  readonly popularFallbackRefreshes: Counter;
  readonly channelFailures: Counter;
  readonly circuitOpen: Gauge;
  readonly circuitOpens: Counter;
  readonly userReads: Counter;

  constructor(metrics: ServiceMetrics) {
    this.degradations = metrics.counter('gateway_degradations_total', 'Stage answers replaced by a fallback, by stage and cause', [
      'stage',
      'cause',
    ]);
    this.stageSeconds = metrics.histogram(
      'gateway_stage_duration_seconds',
      'Time of each stage call seen from the gateway, by outcome (ok, degraded, skipped)',
      ['stage', 'outcome'],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    );
    this.recommendSeconds = metrics.histogram(
      'gateway_recommend_duration_seconds',
      'Whole Recommend time, by whether any stage degraded',
      ['degraded'],
      [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    );
    this.candidateCount = metrics.gauge('gateway_candidate_count', 'Adaptive candidate counts in use (retrieve, rank)', ['count']);
    this.countChanges = metrics.counter('gateway_candidate_count_changes_total', 'Adaptive candidate count changes', [
      'count',
      'direction',
    ]);
    this.circuitOpen = metrics.gauge('gateway_circuit_open', 'Whether a stage is skipped after repeated failures (1) or called (0)', [
      'stage',
    ]);
    this.circuitOpens = metrics.counter(
      'gateway_circuit_opens_total',
      'Times a stage was skipped for a cool-down after repeated failures',
      ['stage'],
    );
    this.channelFailures = metrics.counter(
      'gateway_retrieval_channel_failures_total',
      'Retrieval channels that failed while the others answered, by channel and cause',
      ['channel', 'cause'],
    );
    this.userReads = metrics.counter(
      'gateway_user_reads_total',
      'The one user read per request passed down to every stage, by outcome (ok, failed: the stages read it themselves)',
      ['outcome'],
    );
    this.popularFallbackRefreshes = metrics.counter(
      'gateway_popular_fallback_refreshes_total',
      'Refreshes of the cached popular items used when retrieval and the feature service both fail',
      ['outcome'],
    );
  }
}
