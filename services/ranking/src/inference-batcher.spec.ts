import { ResourceExhaustedError } from '@recsys/service-kit';
import type { Tensor } from '@recsys/model-format';
import { type BatcherOptions, InferenceBatcher, sliceFeeds } from './inference-batcher.js';

/** Feeds whose row k carries `base + k` in a [B, 2] float input and an int [B] input: scores show whose row ran where. */
function feeds(base: number, rows: number): Record<string, Tensor> {
  const x = new Float32Array(rows * 2);
  const id = new Int32Array(rows);
  for (let k = 0; k < rows; k++) {
    x[k * 2] = base + k;
    x[k * 2 + 1] = -(base + k);
    id[k] = base + k;
  }
  return { x: { data: x, shape: [rows, 2] }, id: { data: id, shape: [rows] } };
}

/** A runner that scores row k as x[k, 0] (after checking the two inputs still agree) and records each run's size. */
function recordingRunner() {
  const runs: number[] = [];
  const runner = async (f: Record<string, Tensor>, rows: number) => {
    runs.push(rows);
    const out = new Float32Array(rows);
    for (let k = 0; k < rows; k++) {
      if (f.x!.data[k * 2] !== f.id!.data[k] || f.x!.data[k * 2 + 1] !== -f.id!.data[k]!) throw new Error('inputs out of step');
      out[k] = f.x!.data[k * 2]!;
    }
    return out;
  };
  return { runs, runner };
}

const options = (extra: Partial<BatcherOptions> = {}): BatcherOptions => ({
  batching: true,
  maxBatchSize: 8,
  maxQueueDelayMs: 5,
  maxQueueLength: 100,
  ...extra,
});

const expected = (base: number, rows: number) => Array.from({ length: rows }, (_, k) => base + k);

describe('InferenceBatcher', () => {
  it('runs concurrent requests together up to the batch size and gives each its own rows back', async () => {
    const { runs, runner } = recordingRunner();
    const batcher = new InferenceBatcher(runner, options({ maxQueueDelayMs: 60_000 }));
    // Admitted together (they read their features meanwhile), queued one by one: the batch waits for all three.
    const places = [batcher.reserve(3), batcher.reserve(2), batcher.reserve(5)];
    const answers = await Promise.all([
      places[0]!.submit(feeds(100, 3)),
      places[1]!.submit(feeds(200, 2)),
      places[2]!.submit(feeds(300, 5)),
    ]);
    expect(answers.map((a) => Array.from(a))).toEqual([expected(100, 3), expected(200, 2), expected(300, 5)]);
    // 10 rows in batches of 8: the third request is split across two runs.
    expect(runs).toEqual([8, 2]);
  });

  it('runs a lone request at once, and stops waiting when the request it waited for gives up', async () => {
    const { runs, runner } = recordingRunner();
    // A minute of queue delay: any wait would outlast the test.
    const batcher = new InferenceBatcher(runner, options({ maxQueueDelayMs: 60_000 }));
    expect(Array.from(await batcher.submit(feeds(0, 2), 2))).toEqual(expected(0, 2));
    const waiting = batcher.reserve(3);
    const gone = batcher.reserve(4);
    const answer = waiting.submit(feeds(10, 3));
    expect(batcher.queueLength).toBe(1);
    gone.cancel();
    expect(Array.from(await answer)).toEqual(expected(10, 3));
    expect(runs).toEqual([2, 3]);
    await expect(waiting.submit(feeds(10, 3))).rejects.toThrow('the reservation was used or cancelled');
  });

  it('runs a request larger than the batch size in chunks, in order', async () => {
    const { runs, runner } = recordingRunner();
    const batcher = new InferenceBatcher(runner, options({ maxBatchSize: 4 }));
    expect(Array.from(await batcher.submit(feeds(0, 10), 10))).toEqual(expected(0, 10));
    expect(runs).toEqual([4, 4, 2]);
  });

  it('without batching, gives every request runs of its own', async () => {
    const { runs, runner } = recordingRunner();
    const batcher = new InferenceBatcher(runner, options({ batching: false }));
    const answers = await Promise.all([batcher.submit(feeds(0, 3), 3), batcher.submit(feeds(10, 2), 2), batcher.submit(feeds(20, 9), 9)]);
    expect(answers.map((a) => Array.from(a))).toEqual([expected(0, 3), expected(10, 2), expected(20, 9)]);
    expect(runs).toEqual([3, 2, 8, 1]);
  });

  it('refuses a request when the queue is full or when its expected wait passes its deadline', async () => {
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const { runner } = recordingRunner();
    const now = () => 1_000_000;
    const rejected: string[] = [];
    const batcher = new InferenceBatcher(
      async (f, rows) => {
        await blocked;
        return runner(f, rows);
      },
      options({
        batching: false,
        maxQueueLength: 2,
        now,
        observer: { run: () => undefined, queueWait: () => undefined, rejected: (r) => rejected.push(r) },
      }),
    );
    // 10 rows per ms: with 8 rows in flight and 8 queued, 4 more rows are done in 2 ms.
    batcher.seedThroughput(10, 1);
    const inFlight = batcher.submit(feeds(0, 8), 8);
    const queued = batcher.submit(feeds(50, 8), 8);
    expect(batcher.expectedWaitMs(4)).toBeCloseTo(2, 9);
    await expect(batcher.submit(feeds(90, 4), 4, now() + 1.9)).rejects.toThrow(
      'expected wait for inference 2.00 ms (16 rows ahead) exceeds the 1.90 ms left before the deadline',
    );
    const inTime = batcher.submit(feeds(90, 4), 4, now() + 2.1);
    await expect(batcher.submit(feeds(95, 1), 1)).rejects.toThrow(ResourceExhaustedError);
    expect(rejected).toEqual(['deadline', 'queue_full']);
    release();
    expect((await Promise.all([inFlight, queued, inTime])).map((a) => Array.from(a))).toEqual([
      expected(0, 8),
      expected(50, 8),
      expected(90, 4),
    ]);
  });

  it('counts the batch delay in the expected wait when other requests are arriving', () => {
    const batcher = new InferenceBatcher(recordingRunner().runner, options({ maxQueueDelayMs: 40, now: () => 0 }));
    batcher.seedThroughput(1, 1);
    expect(batcher.expectedWaitMs(3)).toBe(3);
    const arriving = batcher.reserve(2);
    expect(batcher.expectedWaitMs(3)).toBe(43);
    expect(batcher.expectedWaitMs(8)).toBe(8);
    arriving.cancel();
  });

  it('fails every request of a failed run and keeps serving the rest', async () => {
    let calls = 0;
    const { runner } = recordingRunner();
    const batcher = new InferenceBatcher(
      async (f, rows) => {
        if (calls++ === 0) throw new Error('onnxruntime failed');
        return runner(f, rows);
      },
      options({ maxBatchSize: 4, maxQueueDelayMs: 60_000 }),
    );
    const places = [batcher.reserve(3), batcher.reserve(3), batcher.reserve(2)];
    const first = places[0]!.submit(feeds(0, 3));
    const split = places[1]!.submit(feeds(10, 3));
    const later = places[2]!.submit(feeds(20, 2));
    await expect(first).rejects.toThrow('onnxruntime failed');
    // The request whose first chunk failed fails whole; its remaining chunk never runs.
    await expect(split).rejects.toThrow('onnxruntime failed');
    expect(Array.from(await later)).toEqual(expected(20, 2));
  });

  it('slices batched feeds by rows as views', () => {
    const f = feeds(0, 5);
    const part = sliceFeeds(f, 1, 3);
    expect(part.x).toEqual({ data: new Float32Array([1, -1, 2, -2]), shape: [2, 2] });
    expect(part.id).toEqual({ data: new Int32Array([1, 2]), shape: [2] });
    expect(part.x!.data.buffer).toBe(f.x!.data.buffer);
  });
});
