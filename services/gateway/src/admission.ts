import { ResourceExhaustedError, type ServiceMetrics } from '@recsys/service-kit';
import type { gateway } from '@recsys/contracts';
import type { Caller, GatewayApi } from './gateway-api.js';
import { ConcurrencyLimit } from './concurrency-limit.js';

// prom-client is service-kit's dependency, not the gateway's: name its types through ServiceMetrics.
type Counter = ReturnType<ServiceMetrics['counter']>;
type Gauge = ReturnType<ServiceMetrics['gauge']>;
type Histogram = ReturnType<ServiceMetrics['histogram']>;

/** Admission control, like Triton's queue policy (max queue size, queue timeout, reject). */
export interface AdmissionConfig {
  /** Requests worked on at once (the adaptive limit's most); 0 turns admission control off. */
  maxInFlight: number;
  /**
   * The in-flight limit moves with measured latency (concurrency-limit.ts) between minInFlight and maxInFlight;
   * off, it stays at maxInFlight.
   */
  adaptive: boolean;
  /** The adaptive limit's least (at most maxInFlight). */
  minInFlight: number;
  /** The latency the adaptive limit steers admitted requests to (their p90), ms: under the request budget. */
  targetMs: number;
  /** Requests waiting for a slot (adaptive: at most the current limit too); one more is shed at once (queue_full). */
  maxQueue: number;
  /** Longest wait for a slot; a request still waiting then is shed (queue_timeout). */
  queueTimeoutMs: number;
  /**
   * Event-loop lag (the worst of the last few samples) above which new requests are shed at once (event_loop_lag); 0 off.
   * A saturated process cannot see how long requests waited before it read them; its own lag is that wait.
   */
  maxEventLoopLagMs: number;
}

export type ShedReason = 'queue_full' | 'queue_timeout' | 'event_loop_lag';

/** The gateway is past saturation: 429 with Retry-After on REST, RESOURCE_EXHAUSTED on gRPC. */
export class OverloadedError extends ResourceExhaustedError {
  constructor(
    readonly reason: ShedReason,
    readonly retryAfterS: number,
  ) {
    super(
      `the gateway is overloaded (${
        reason === 'queue_full'
          ? 'admission queue full'
          : reason === 'queue_timeout'
            ? 'no capacity within the admission queue timeout'
            : 'its event loop lags'
      }); retry after ${retryAfterS}s`,
    );
    this.name = 'OverloadedError';
  }
}

/** The lag sampler's period and how many samples the recent lag spans (100 ms). */
const LAG_SAMPLE_MS = 20;
const LAG_SAMPLES = 5;

interface Waiter {
  admit: () => void;
  timer: NodeJS.Timeout;
}

/** An admitted request: when it started, and whether the adaptive limit has already counted it as overdue. */
interface Running {
  started: number;
  counted: boolean;
}

export interface AdmissionMetrics {
  shed: Counter;
  inFlight: Gauge;
  queued: Gauge;
  queueSeconds: Histogram;
  eventLoopLag: Gauge;
  limit: Gauge;
}

/** The admission metrics of a registry, created once (tests start several gateways on one registry). */
export function admissionMetrics(metrics: ServiceMetrics): AdmissionMetrics {
  const existing = <T>(name: string) => metrics.registry.getSingleMetric(name) as T | undefined;
  return {
    shed:
      existing<Counter>('gateway_shed_total') ??
      metrics.counter('gateway_shed_total', 'Requests refused by admission control (overload), by reason', ['reason']),
    inFlight:
      existing<Gauge>('gateway_admission_in_flight') ??
      metrics.gauge('gateway_admission_in_flight', 'Requests admitted and being worked on'),
    queued: existing<Gauge>('gateway_admission_queued') ?? metrics.gauge('gateway_admission_queued', 'Requests waiting for admission'),
    limit:
      existing<Gauge>('gateway_admission_limit') ??
      metrics.gauge('gateway_admission_limit', 'Requests admission control lets work at once now (adaptive: moves with latency)'),
    eventLoopLag:
      existing<Gauge>('gateway_admission_event_loop_lag_seconds') ??
      metrics.gauge(
        'gateway_admission_event_loop_lag_seconds',
        'Event-loop lag admission control compares with its limit (worst recent sample)',
      ),
    queueSeconds:
      existing<Histogram>('gateway_admission_queue_seconds') ??
      metrics.histogram(
        'gateway_admission_queue_seconds',
        'Time admitted requests waited for a slot',
        [],
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      ),
  };
}

/**
 * At most `limit` requests at once (maxInFlight, or the adaptive limit between minInFlight and maxInFlight); the next
 * `queueLimit` wait in arrival order for at most queueTimeoutMs; the rest are shed at once. Shedding early keeps the
 * admitted requests' latency within their budget past saturation, where an unbounded queue would make every request
 * late.
 */
export class Admission {
  private inFlight = 0;
  /** FIFO: waiters from `head` on; the array is compacted when the consumed part grows. */
  private queue: Waiter[] = [];
  private head = 0;
  /** Lag of the last LAG_SAMPLES samples, ring buffer. */
  private readonly lags = new Array<number>(LAG_SAMPLES).fill(0);
  private lagIndex = 0;
  private sampler: NodeJS.Timeout | undefined;
  private readonly limiter: ConcurrencyLimit | undefined;
  /** The admitted requests (with the adaptive limit only: it judges the overdue ones before they finish). */
  private readonly runningNow = new Set<Running>();
  /** The requests in flight already over the target, not counted yet: marked counted (see ConcurrencyLimit.tick). */
  private readonly overdue = (): number[] => {
    const late: number[] = [];
    const now = this.now();
    const lag = this.lagMs;
    for (const entry of this.runningNow) {
      const latency = now - entry.started + lag;
      if (!entry.counted && latency > this.config.targetMs) {
        entry.counted = true;
        late.push(latency);
      }
    }
    return late;
  };

  constructor(
    private readonly config: AdmissionConfig,
    private readonly metrics?: AdmissionMetrics,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!Number.isInteger(config.maxInFlight) || config.maxInFlight < 0) throw new RangeError('maxInFlight must be an integer >= 0');
    if (!Number.isInteger(config.maxQueue) || config.maxQueue < 0) throw new RangeError('maxQueue must be an integer >= 0');
    if (!(config.queueTimeoutMs >= 0)) throw new RangeError('queueTimeoutMs must be >= 0');
    if (!(config.maxEventLoopLagMs >= 0)) throw new RangeError('maxEventLoopLagMs must be >= 0');
    if (config.adaptive && config.maxInFlight > 0) {
      this.limiter = new ConcurrencyLimit(
        { min: Math.min(config.minInFlight, config.maxInFlight), max: config.maxInFlight, targetMs: config.targetMs },
        (limit) => this.metrics?.limit.set(limit),
      );
    }
    this.metrics?.limit.set(this.limit);
  }

  get enabled(): boolean {
    return this.config.maxInFlight > 0 || this.config.maxEventLoopLagMs > 0;
  }

  /**
   * Requests let wait now: maxQueue, and with the adaptive limit at most the limit itself. A queue longer than the
   * requests in flight cannot drain within about one request's time: the rest would only wait to be shed
   * (queue_timeout), where shedding them at once answers them sooner and costs no timer.
   */
  get queueLimit(): number {
    return this.limiter ? Math.min(this.config.maxQueue, this.limiter.limit) : this.config.maxQueue;
  }

  /** Requests let work at once now; 0: no in-flight limit. */
  get limit(): number {
    return this.limiter?.limit ?? this.config.maxInFlight;
  }

  /**
   * Starts sampling the event-loop lag (when its limit is set, or the in-flight limit is adaptive: a request waits
   * about the lag before the gateway reads it, which its own timing cannot see); stop() ends it.
   */
  start(): void {
    if ((this.config.maxEventLoopLagMs <= 0 && !this.limiter) || this.sampler) return;
    let expected = this.now() + LAG_SAMPLE_MS;
    this.sampler = setInterval(() => {
      const now = this.now();
      this.recordLag(Math.max(0, now - expected));
      expected = now + LAG_SAMPLE_MS;
    }, LAG_SAMPLE_MS);
    this.sampler.unref();
  }

  stop(): void {
    clearInterval(this.sampler);
    this.sampler = undefined;
  }

  /** One lag sample in ms (the sampler's; tests feed their own). */
  recordLag(lagMs: number): void {
    this.lags[this.lagIndex] = lagMs;
    this.lagIndex = (this.lagIndex + 1) % LAG_SAMPLES;
    this.metrics?.eventLoopLag.set(this.lagMs / 1000);
  }

  /** The worst recent lag sample, ms. */
  get lagMs(): number {
    return Math.max(...this.lags);
  }

  get running(): number {
    return this.inFlight;
  }

  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Runs `work` once admitted; throws OverloadedError when shed. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (!this.enabled) return work();
    await this.acquire();
    const running: Running = { started: this.now(), counted: false };
    if (this.limiter) this.runningNow.add(running);
    try {
      return await work();
    } finally {
      this.release(running);
    }
  }

  /**
   * Sheds a request that would be shed at once now (event-loop lag over its limit, or the queue full), before the
   * transport reads its body: returns the error to answer with (counted as shed), or undefined when the request may go
   * on to run(), which decides again (takes a slot, queues or sheds) when its body has arrived. Takes no slot: a slow
   * body cannot hold one.
   */
  shedEarly(): OverloadedError | undefined {
    const reason = this.enabled ? this.immediateShedReason() : undefined;
    return reason === undefined ? undefined : this.shed(reason);
  }

  /** Why a request arriving now is shed without waiting, if it is. */
  private immediateShedReason(): ShedReason | undefined {
    if (this.config.maxEventLoopLagMs > 0 && this.lagMs > this.config.maxEventLoopLagMs) return 'event_loop_lag';
    if (this.config.maxInFlight === 0 || (this.inFlight < this.limit && this.waiting === 0)) return undefined;
    if (this.waiting >= this.queueLimit || this.config.queueTimeoutMs === 0) return 'queue_full';
    return undefined;
  }

  private acquire(): Promise<void> | void {
    // Arrivals close windows too: past a load step no answer may come for longer than a window.
    this.limiter?.tick(this.now(), this.inFlight, this.overdue);
    const reason = this.immediateShedReason();
    if (reason !== undefined) throw this.shed(reason);
    if (this.config.maxInFlight === 0) {
      this.inFlight++;
      return;
    }
    if (this.inFlight < this.limit && this.waiting === 0) {
      this.admitOne();
      this.metrics?.queueSeconds.observe(0);
      return;
    }
    const queuedAt = this.now();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        admit: () => {
          this.metrics?.queueSeconds.observe((this.now() - queuedAt) / 1000);
          resolve();
        },
        timer: setTimeout(() => {
          this.remove(waiter);
          reject(this.shed('queue_timeout'));
        }, this.config.queueTimeoutMs),
      };
      this.queue.push(waiter);
      this.metrics?.queued.set(this.waiting);
    });
  }

  private admitOne(): void {
    this.inFlight++;
    this.limiter?.admitted(this.inFlight, this.now());
    this.metrics?.inFlight.set(this.inFlight);
  }

  private release(running: Running): void {
    this.inFlight--;
    if (this.config.maxInFlight === 0) return;
    // The latency a client sees is about the lag (the wait before the gateway reads its request) plus the work's.
    const now = this.now();
    if (this.limiter) {
      this.runningNow.delete(running);
      // One counted overdue already is not counted again.
      if (running.counted) this.limiter.tick(now, this.inFlight, this.overdue);
      else this.limiter.sample(now - running.started + this.lagMs, now, this.inFlight, this.overdue);
    }
    // The limit may have shrunk (the queue then waits for more to finish) or grown (more than one is let in).
    while (this.inFlight < this.limit && this.head < this.queue.length) {
      const next = this.queue[this.head++]!;
      clearTimeout(next.timer);
      this.admitOne();
      next.admit();
    }
    this.compact();
    this.metrics?.inFlight.set(this.inFlight);
    this.metrics?.queued.set(this.waiting);
  }

  private remove(waiter: Waiter): void {
    const index = this.queue.indexOf(waiter, this.head);
    if (index >= 0) this.queue.splice(index, 1);
    this.compact();
    this.metrics?.queued.set(this.waiting);
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private shed(reason: ShedReason): OverloadedError {
    this.metrics?.shed.inc({ reason });
    // Without a stack: a shed request's error is answered, never logged with one, and capturing it took 4% of a shed
    // request's CPU in pnpm bench:shed's profile.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      // A short back-off: the overload passes within seconds or it does not, and then the client retries again.
      return new OverloadedError(reason, 1);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
  }
}

/** The gateway API behind admission control: every call waits for a slot or is shed. */
export class AdmittedGatewayApi implements GatewayApi {
  constructor(
    private readonly api: GatewayApi,
    readonly admission: Admission,
  ) {}

  recommend(request: gateway.RecommendRequest, caller: Caller): Promise<gateway.RecommendResponse> {
    return this.admission.run(() => this.api.recommend(request, caller));
  }

  sendFeedback(request: gateway.SendFeedbackRequest, caller: Caller): Promise<gateway.SendFeedbackResponse> {
    return this.admission.run(() => this.api.sendFeedback(request, caller));
  }

  similarItems(request: gateway.GetSimilarItemsRequest, caller: Caller): Promise<gateway.GetSimilarItemsResponse> {
    return this.admission.run(() => this.api.similarItems(request, caller));
  }
}
