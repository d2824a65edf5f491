import { create } from '@bufbuild/protobuf';
import { features, type common, type gateway } from '@recsys/contracts';
import type { Logger, ServiceClient, ServiceMetrics } from '@recsys/service-kit';

export interface ImpressionLogConfig {
  enabled: boolean;
  /** How often queued impressions are sent to the feature service. */
  flushMs: number;
  /** Impressions per LogImpressions call. */
  batch: number;
  /** Impressions waiting at most; more are dropped (counted). */
  maxQueue: number;
  /** Deadline of one LogImpressions call. */
  timeoutMs: number;
}

/** What a served answer leaves for the log: references to the answer's own objects, nothing copied on the request's path. */
export interface ServedAnswer {
  requestId: string;
  userId: string;
  timestampMs: number;
  items: readonly gateway.RecommendedItem[];
  versions: { retrievalModel: string; index: string; prerankingModel: string; rankingModel: string };
  degradations: readonly common.Degradation[];
}

/** Recent per-answer costs (ms) kept for the figures the metrics show. */
const COST_WINDOW = 10_000;

type Counter = ReturnType<ServiceMetrics['counter']>;

/**
 * The gateway's side of the impression log: a served answer is queued (a push, timed: that is all a request pays
 * on its path) and a timer, started outside any request, sends the queue to the feature service in batches
 * (`LogImpressions`, which appends them to the event log). Nothing here can fail or delay a request: a full queue
 * drops the answer, a failed call drops its batch, both counted (`gateway_impressions_dropped_total{reason}`).
 * Costs, over the last 10,000 answers: `gateway_impression_log_write_ms_p99`, the p99 of what logging cost the
 * request on its path (the queue push), and `gateway_impression_log_flush_ms_per_answer`, the mean of each answer's
 * share of its batch's synchronous work off the path (building the messages, encoding, starting the call): what
 * logging costs the event loop in all is the sum.
 */
export class ImpressionLog {
  private queue: ServedAnswer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();
  /** On-path costs (ms), a ring. */
  private readonly costs = new Float64Array(COST_WINDOW);
  private costCount = 0;
  /** Off-path shares (ms), a ring. */
  private readonly shares = new Float64Array(COST_WINDOW);
  private shareCount = 0;
  private lastWarnMs = -Infinity;
  private readonly logged: Counter;
  private readonly dropped: Counter;

  constructor(
    private readonly client: Pick<ServiceClient<typeof features.FeatureService.method>, 'logImpressions'>,
    private readonly config: ImpressionLogConfig,
    metrics: ServiceMetrics,
    private readonly logger: Logger,
  ) {
    this.logged = metrics.counter('gateway_impressions_logged_total', 'Served answers the feature service appended to the event log');
    this.dropped = metrics.counter(
      'gateway_impressions_dropped_total',
      'Served answers left out of the event log (the answers themselves were served), by reason: queue_full, write_failed',
      ['reason'],
    );
    metrics.sampledGauge('gateway_impression_log_queue', 'Served answers waiting to be sent to the event log', () => this.queue.length);
    metrics.sampledGauge(
      'gateway_impression_log_write_ms_p99',
      'p99 over the last 10,000 answers of the time logging one cost the request on its path (the queue push), ms',
      () => this.writeCostP99(),
    );
    metrics.sampledGauge(
      'gateway_impression_log_flush_ms_per_answer',
      "Mean over the last 10,000 logged answers of each one's share of its batch's synchronous send work (off the request's path), ms",
      () => this.flushCostPerAnswer(),
    );
    this.dropped.inc({ reason: 'queue_full' }, 0);
    this.dropped.inc({ reason: 'write_failed' }, 0);
  }

  /** Starts the flush timer; call outside any request (the timer's calls must not inherit a request's deadline). */
  start(): this {
    if (this.config.enabled) {
      this.timer = setInterval(() => this.flush(), this.config.flushMs);
      this.timer.unref();
    }
    return this;
  }

  /** Queues a served answer; never throws. */
  record(answer: ServedAnswer): void {
    if (!this.config.enabled) return;
    const started = performance.now();
    if (this.queue.length >= this.config.maxQueue) {
      this.dropped.inc({ reason: 'queue_full' });
      return;
    }
    this.queue.push(answer);
    this.costs[this.costCount % COST_WINDOW] = performance.now() - started;
    this.costCount++;
  }

  /** Sends everything queued now, in batches; resolves when those calls have ended. */
  flush(): Promise<void> {
    const sends: Promise<void>[] = [];
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.config.batch);
      sends.push(this.send(batch));
    }
    return Promise.all(sends).then(() => undefined);
  }

  /**
   * Feedback can arrive before the timer sent the answer it names (a click within IMPRESSION_LOG_FLUSH_MS): then the
   * queue is sent first, and sends in flight are awaited, so the feature service finds the impression and attributes
   * the feedback to the versions that served it. Never fails: a failed send is counted as always.
   */
  async sendPending(requestIds: readonly string[]): Promise<void> {
    const wanted = new Set(requestIds.filter((id) => id !== ''));
    if (wanted.size === 0) return;
    if (this.queue.some((answer) => wanted.has(answer.requestId))) await this.flush();
    if (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Stops the timer and sends what is queued (waiting for calls in flight). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    await Promise.all([...this.inFlight]);
  }

  /** The mean of the recent answers' shares of their batches' send work, ms (0 before any). */
  flushCostPerAnswer(): number {
    const n = Math.min(this.shareCount, COST_WINDOW);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += this.shares[i]!;
    return n === 0 ? 0 : sum / n;
  }

  /** The p99 of the recent on-path costs, ms (0 before any). */
  writeCostP99(): number {
    const n = Math.min(this.costCount, COST_WINDOW);
    if (n === 0) return 0;
    const sorted = this.costs.slice(0, n).sort();
    return sorted[Math.min(n - 1, Math.ceil(0.99 * n) - 1)]!;
  }

  private send(batch: ServedAnswer[]): Promise<void> {
    const started = performance.now();
    let call: Promise<unknown>;
    try {
      const impressions = batch.map((answer) =>
        create(features.ImpressionSchema, {
          requestId: answer.requestId,
          userId: answer.userId,
          timestampMs: BigInt(answer.timestampMs),
          items: answer.items.map((item, position) => ({ itemId: item.itemId, position, score: item.score })),
          versions: answer.versions,
          degradations: [...answer.degradations],
        }),
      );
      call = this.client.logImpressions({ impressions }, { timeoutMs: this.config.timeoutMs });
    } catch (error) {
      call = Promise.reject(error);
    }
    const share = (performance.now() - started) / batch.length;
    for (let i = 0; i < batch.length; i++) {
      this.shares[this.shareCount % COST_WINDOW] = share;
      this.shareCount++;
    }
    const done = call.then(
      () => {
        this.logged.inc(batch.length);
      },
      (error: unknown) => {
        this.dropped.inc({ reason: 'write_failed' }, batch.length);
        // One line per 10 s at most while the feature service is away; the counter has every batch.
        if (performance.now() - this.lastWarnMs < 10_000) return;
        this.lastWarnMs = performance.now();
        this.logger.warn({ err: error, impressions: batch.length }, 'impressions not written to the event log (answers were served)');
      },
    );
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
    return done;
  }
}
