import { ResourceExhaustedError, UnavailableError } from '@recsys/service-kit';
import { concatFeeds } from '@recsys/serving';
import type { Tensor } from '@recsys/model-format';

/** One inference run: feeds of `rows` examples in, one score per example out. */
export type BatchRunner = (feeds: Record<string, Tensor>, rows: number) => Promise<Float32Array>;

export type RejectReason = 'queue_full' | 'deadline';

/** What the batcher reports for metrics. */
export interface BatchObserver {
  run(rows: number, requests: number, ms: number): void;
  queueWait(ms: number): void;
  rejected(reason: RejectReason): void;
}

export interface BatcherOptions {
  /** False: each run holds one request's rows only, started at once (no merging, no delay). */
  batching: boolean;
  /** Rows per run at most; a larger request runs in chunks. */
  maxBatchSize: number;
  /** How long the oldest queued request waits for others to fill a batch. */
  maxQueueDelayMs: number;
  /** Requests waiting at most; more are refused. */
  maxQueueLength: number;
  observer?: BatchObserver;
  now?: () => number;
}

interface Entry {
  feeds: Record<string, Tensor>;
  rows: number;
  /** Rows handed to runs so far. */
  taken: number;
  /** Rows scored so far. */
  scored: number;
  scores: Float32Array;
  enqueuedAt: number;
  failed: boolean;
  resolve(scores: Float32Array): void;
  reject(error: unknown): void;
}

/** A place a request holds from admission until its feeds are ready (it reads features meanwhile). */
export interface Reservation {
  /** Queues the request's feeds (`rows` examples) and resolves with their scores, in row order. */
  submit(feeds: Record<string, Tensor>): Promise<Float32Array>;
  /** Gives the place up (the request failed before its feeds were ready); nothing after submit. */
  cancel(): void;
}

interface Part {
  entry: Entry;
  start: number;
  end: number;
}

/** Rows [start, end) of feeds batched along the first axis, as views. */
export function sliceFeeds(feeds: Record<string, Tensor>, start: number, end: number): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const rowSize = t.shape.length > 1 ? t.data.length / t.shape[0]! : 1;
    out[name] = { data: t.data.subarray(start * rowSize, end * rowSize), shape: [end - start, ...t.shape.slice(1)] };
  }
  return out;
}

/** Weight of the newest run in the throughput estimate. */
const SMOOTHING = 0.2;

/**
 * Dynamic batching: concurrent requests' feeds are queued and run together, up to `maxBatchSize` rows
 * or until the oldest has waited `maxQueueDelayMs` (only while other admitted requests are still reading
 * their features: a lone request runs at once), one run at a time; each request gets its own rows' scores back. A request whose expected wait (the pending delay plus the work ahead at the recent
 * throughput) would pass its deadline, or that finds the queue full, is refused at once.
 */
export class InferenceBatcher {
  private readonly queue: Entry[] = [];
  private pendingRows = 0;
  private inFlightRows = 0;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private closed = false;
  private draining = false;
  /** Requests admitted whose feeds are not queued yet: a batch waits for them, and only for them. */
  private arriving = 0;
  private readonly now: () => number;
  // Smoothed rows and milliseconds per run: their ratio is the throughput.
  private rowsAverage = 0;
  private msAverage = 0;

  constructor(
    private readonly runner: BatchRunner,
    private readonly options: BatcherOptions,
  ) {
    this.now = options.now ?? (() => performance.timeOrigin + performance.now());
  }

  /** Starts the throughput estimate from a measured run (the warm-up), before any request has run. */
  seedThroughput(rows: number, ms: number): void {
    this.rowsAverage = rows;
    this.msAverage = Math.max(ms, 1e-3);
  }

  /** Rows per millisecond over recent runs; Infinity before any measurement. */
  get rowsPerMs(): number {
    return this.msAverage > 0 ? this.rowsAverage / this.msAverage : Infinity;
  }

  get queueLength(): number {
    return this.queue.length;
  }

  /** Milliseconds until `rows` more rows would be scored: the pending batch delay, then all work ahead and their own. */
  expectedWaitMs(rows: number): number {
    let startIn = 0;
    if (!this.running) {
      if (this.timer) startIn = Math.max(0, this.timerAt - this.now());
      else if (this.queue.length === 0 && this.arriving > 0 && this.options.batching && rows < this.options.maxBatchSize) {
        startIn = this.options.maxQueueDelayMs;
      }
    }
    return startIn + (this.inFlightRows + this.pendingRows + rows) / this.rowsPerMs;
  }

  /** Throws RESOURCE_EXHAUSTED when a request of `rows` rows would be refused now (callers check before costly work). */
  admit(rows: number, deadlineMs: number): void {
    if (this.closed) throw new UnavailableError('the model is being replaced or the service is stopping; retry');
    if (this.queue.length >= this.options.maxQueueLength) {
      this.options.observer?.rejected('queue_full');
      throw new ResourceExhaustedError(`the inference queue is full (${this.queue.length} requests waiting); retry later`);
    }
    if (deadlineMs !== Infinity) {
      const wait = this.expectedWaitMs(rows);
      const left = deadlineMs - this.now();
      if (wait > left) {
        this.options.observer?.rejected('deadline');
        throw new ResourceExhaustedError(
          `expected wait for inference ${wait.toFixed(2)} ms (${this.pendingRows + this.inFlightRows} rows ahead) exceeds the ${Math.max(0, left).toFixed(2)} ms left before the deadline`,
        );
      }
    }
  }

  /**
   * Admits a request of `rows` rows before its features are read (RESOURCE_EXHAUSTED when it would be
   * refused) and counts it as arriving: batches wait up to the queue delay only while requests are arriving.
   */
  reserve(rows: number, deadlineMs = Infinity): Reservation {
    this.admit(rows, deadlineMs);
    this.arriving++;
    let open = true;
    const leave = () => {
      if (!open) return false;
      open = false;
      this.arriving--;
      return true;
    };
    return {
      submit: (feeds) => {
        if (!leave()) return Promise.reject(new Error('the reservation was used or cancelled'));
        return this.enqueue(feeds, rows, deadlineMs);
      },
      cancel: () => {
        // Nobody else may be coming now: a waiting batch need not wait any longer.
        if (leave()) this.schedule();
      },
    };
  }

  /** Queues one request's feeds (`rows` examples) and resolves with their scores, in row order. */
  submit(feeds: Record<string, Tensor>, rows: number, deadlineMs = Infinity): Promise<Float32Array> {
    try {
      return this.reserve(rows, deadlineMs).submit(feeds);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private enqueue(feeds: Record<string, Tensor>, rows: number, deadlineMs: number): Promise<Float32Array> {
    try {
      // The queue may have grown while the request read its features.
      this.admit(rows, deadlineMs);
    } catch (error) {
      this.schedule();
      return Promise.reject(error);
    }
    if (rows === 0) return Promise.resolve(new Float32Array(0));
    return new Promise<Float32Array>((resolve, reject) => {
      this.queue.push({
        feeds,
        rows,
        taken: 0,
        scored: 0,
        scores: new Float32Array(rows),
        enqueuedAt: this.now(),
        failed: false,
        resolve,
        reject,
      });
      this.pendingRows += rows;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    const { batching, maxBatchSize, maxQueueDelayMs } = this.options;
    // Waiting only pays when another request is on its way to join the batch.
    const wait =
      !batching || this.draining || this.arriving === 0 || this.pendingRows >= maxBatchSize
        ? 0
        : this.queue[0]!.enqueuedAt + maxQueueDelayMs - this.now();
    if (wait <= 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.runBatch();
    } else if (!this.timer) {
      this.timerAt = this.now() + wait;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, wait);
    }
  }

  /** The next run's rows: whole requests from the head while they fit, the last one possibly in part. */
  private takeBatch(): Part[] {
    const parts: Part[] = [];
    let rows = 0;
    const max = this.options.maxBatchSize;
    while (this.queue.length > 0 && rows < max) {
      const entry = this.queue[0]!;
      const take = Math.min(entry.rows - entry.taken, max - rows);
      parts.push({ entry, start: entry.taken, end: entry.taken + take });
      entry.taken += take;
      rows += take;
      if (entry.taken === entry.rows) this.queue.shift();
      if (!this.options.batching) break;
    }
    this.pendingRows -= rows;
    return parts;
  }

  private async runBatch(): Promise<void> {
    this.running = true;
    const parts = this.takeBatch();
    let rows = 0;
    for (const p of parts) rows += p.end - p.start;
    this.inFlightRows = rows;
    const started = this.now();
    for (const p of parts) if (p.start === 0) this.options.observer?.queueWait(started - p.entry.enqueuedAt);
    try {
      const { feeds } = concatFeeds(
        parts.map(({ entry, start, end }) => (start === 0 && end === entry.rows ? entry.feeds : sliceFeeds(entry.feeds, start, end))),
      );
      const scores = await this.runner(feeds, rows);
      if (scores.length !== rows) throw new Error(`the model returned ${scores.length} scores for ${rows} rows`);
      const ms = this.now() - started;
      this.rowsAverage = this.msAverage === 0 ? rows : this.rowsAverage + SMOOTHING * (rows - this.rowsAverage);
      this.msAverage = this.msAverage === 0 ? Math.max(ms, 1e-3) : this.msAverage + SMOOTHING * (Math.max(ms, 1e-3) - this.msAverage);
      this.options.observer?.run(rows, parts.length, ms);
      let offset = 0;
      for (const { entry, start, end } of parts) {
        const n = end - start;
        if (!entry.failed) {
          entry.scores.set(scores.subarray(offset, offset + n), start);
          entry.scored += n;
          if (entry.scored === entry.rows) entry.resolve(entry.scores);
        }
        offset += n;
      }
    } catch (error) {
      for (const { entry } of parts) this.fail(entry, error);
    } finally {
      this.running = false;
      this.inFlightRows = 0;
      this.schedule();
    }
  }

  /** A request whose chunk failed fails whole; its chunks still queued are dropped. */
  private fail(entry: Entry, error: unknown): void {
    if (entry.failed) return;
    entry.failed = true;
    const at = this.queue.indexOf(entry);
    if (at >= 0) {
      this.queue.splice(at, 1);
      this.pendingRows -= entry.rows - entry.taken;
    }
    entry.reject(error);
  }

  /** From now on runs start without waiting for the batch delay (shutdown: in-flight requests finish sooner). */
  drain(): void {
    this.draining = true;
    this.schedule();
  }

  /** Refuses new requests; what is queued still runs, without waiting for the batch delay. */
  close(): void {
    this.closed = true;
    this.drain();
  }
}
