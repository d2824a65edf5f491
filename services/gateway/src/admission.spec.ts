import { gateway } from '@recsys/contracts';
import { create } from '@bufbuild/protobuf';
import { grpcStatusOf, ServiceMetrics } from '@recsys/service-kit';
import { status } from '@grpc/grpc-js';
import { Admission, AdmittedGatewayApi, admissionMetrics, OverloadedError } from './admission';
import type { GatewayApi } from './gateway-api';
import { WINDOW_MS } from './concurrency-limit';
import { httpErrorOf } from './http/errors';

/** Work the test finishes by hand. */
function gate() {
  let open: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (open = resolve));
  return { done, open };
}

const caller = { requestId: 'r', keyName: 'k' };
/** A static in-flight limit (maxInFlight). */
const fixed = { adaptive: false, minInFlight: 1, targetMs: 100 };

describe('Admission', () => {
  it('runs up to maxInFlight at once, queues the next maxQueue in order, sheds the rest at once', async () => {
    const metrics = new ServiceMetrics('gateway');
    const admission = new Admission(
      { maxInFlight: 2, maxQueue: 2, queueTimeoutMs: 60_000, maxEventLoopLagMs: 0, ...fixed },
      admissionMetrics(metrics),
    );
    const gates = [gate(), gate(), gate(), gate()];
    const order: number[] = [];
    const runs = gates.map((g, i) =>
      admission.run(async () => {
        order.push(i);
        await g.done;
        return i;
      }),
    );
    await Promise.resolve();
    expect(admission.running).toBe(2);
    expect(admission.waiting).toBe(2);
    await expect(admission.run(async () => 'x')).rejects.toMatchObject({ reason: 'queue_full', retryAfterS: 1 });
    gates[1]!.open();
    await runs[1];
    await new Promise((r) => setImmediate(r));
    // The first queued request took the freed slot.
    expect(order).toEqual([0, 1, 2]);
    for (const g of gates) g.open();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3]);
    expect(admission.running).toBe(0);
    expect(admission.waiting).toBe(0);
    expect(await metrics.registry.getSingleMetricAsString('gateway_shed_total')).toContain('reason="queue_full"');
  });

  it('sheds early (before a body is read) only what run() would shed at once, and takes no slot', async () => {
    const metrics = new ServiceMetrics('gateway');
    const admission = new Admission(
      { maxInFlight: 1, maxQueue: 1, queueTimeoutMs: 60_000, maxEventLoopLagMs: 0, ...fixed },
      admissionMetrics(metrics),
    );
    expect(admission.shedEarly()).toBeUndefined();
    expect(admission.running).toBe(0);
    const g = gate();
    const first = admission.run(() => g.done);
    // A slot is taken but the queue has a place: the request goes on, to wait there.
    expect(admission.shedEarly()).toBeUndefined();
    const queued = admission.run(async () => 'queued');
    expect(admission.shedEarly()).toMatchObject({ reason: 'queue_full', retryAfterS: 1 });
    expect(admission.running).toBe(1);
    expect(admission.waiting).toBe(1);
    expect(await metrics.registry.getSingleMetricAsString('gateway_shed_total')).toMatch(/\{reason="queue_full"[^}]*\} 1/);
    g.open();
    await first;
    expect(await queued).toBe('queued');
    expect(admission.shedEarly()).toBeUndefined();

    const lagging = new Admission({ maxInFlight: 0, maxQueue: 0, queueTimeoutMs: 0, maxEventLoopLagMs: 50, ...fixed });
    lagging.recordLag(80);
    expect(lagging.shedEarly()).toMatchObject({ reason: 'event_loop_lag' });
    const off = new Admission({ maxInFlight: 0, maxQueue: 0, queueTimeoutMs: 0, maxEventLoopLagMs: 0, ...fixed });
    expect(off.shedEarly()).toBeUndefined();
  });

  it('sheds a request that waited the queue timeout, and frees its queue place', async () => {
    jest.useFakeTimers();
    try {
      const admission = new Admission({ maxInFlight: 1, maxQueue: 1, queueTimeoutMs: 50, maxEventLoopLagMs: 0, ...fixed });
      const g = gate();
      const first = admission.run(() => g.done);
      const queued = admission.run(async () => 'late');
      const outcome = queued.catch((error: unknown) => error);
      jest.advanceTimersByTime(50);
      const error = await outcome;
      expect(error).toBeInstanceOf(OverloadedError);
      expect((error as OverloadedError).reason).toBe('queue_timeout');
      expect(admission.waiting).toBe(0);
      g.open();
      await first;
      expect(await admission.run(async () => 'next')).toBe('next');
    } finally {
      jest.useRealTimers();
    }
  });

  it('frees the slot when the work fails', async () => {
    const admission = new Admission({ maxInFlight: 1, maxQueue: 0, queueTimeoutMs: 10, maxEventLoopLagMs: 0, ...fixed });
    await expect(admission.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(admission.running).toBe(0);
    expect(await admission.run(async () => 1)).toBe(1);
  });

  it('is off at maxInFlight 0', async () => {
    const admission = new Admission({ maxInFlight: 0, maxQueue: 0, queueTimeoutMs: 0, maxEventLoopLagMs: 0, ...fixed });
    const g = gate();
    const runs = Array.from({ length: 100 }, () => admission.run(() => g.done));
    g.open();
    await Promise.all(runs);
    expect(admission.enabled).toBe(false);
  });

  it('sheds at once while the recent event-loop lag is over its limit, and admits again once it is not', async () => {
    const admission = new Admission({ maxInFlight: 0, maxQueue: 0, queueTimeoutMs: 0, maxEventLoopLagMs: 100, ...fixed });
    expect(await admission.run(async () => 'ok')).toBe('ok');
    admission.recordLag(150);
    await expect(admission.run(async () => 'late')).rejects.toMatchObject({ reason: 'event_loop_lag' });
    // The lag spans the last five samples.
    for (let i = 0; i < 4; i++) admission.recordLag(1);
    await expect(admission.run(async () => 'late')).rejects.toMatchObject({ reason: 'event_loop_lag' });
    admission.recordLag(1);
    expect(await admission.run(async () => 'ok')).toBe('ok');
  });

  it('samples the lag of its own event loop once started', async () => {
    const admission = new Admission({ maxInFlight: 0, maxQueue: 0, queueTimeoutMs: 0, maxEventLoopLagMs: 50, ...fixed });
    admission.start();
    try {
      await new Promise((r) => setTimeout(r, 50));
      const until = performance.now() + 200;
      while (performance.now() < until) {
        // Blocks the loop: the next sample is at least ~180 ms late.
      }
      await new Promise((r) => setTimeout(r, 30));
      expect(admission.lagMs).toBeGreaterThan(100);
      await expect(admission.run(async () => 'late')).rejects.toMatchObject({ reason: 'event_loop_lag' });
    } finally {
      admission.stop();
    }
  });

  it('refuses settings out of range', () => {
    expect(() => new Admission({ maxInFlight: -1, maxQueue: 0, queueTimeoutMs: 0, maxEventLoopLagMs: 0, ...fixed })).toThrow(RangeError);
    expect(() => new Admission({ maxInFlight: 1, maxQueue: 1.5, queueTimeoutMs: 0, maxEventLoopLagMs: 0, ...fixed })).toThrow(RangeError);
  });

  it('a shed request is RESOURCE_EXHAUSTED on gRPC and 429 with Retry-After on REST', () => {
    const error = new OverloadedError('queue_full', 1);
    expect(grpcStatusOf(error)).toBe(status.RESOURCE_EXHAUSTED);
    const http = httpErrorOf(error);
    expect(http.status).toBe(429);
    expect(http.headers['Retry-After']).toBe('1');
    expect(http.code).toBe('RESOURCE_EXHAUSTED');
  });

  it('AdmittedGatewayApi puts every method behind the one admission', async () => {
    const g = gate();
    const api: GatewayApi = {
      recommend: async () => {
        await g.done;
        return create(gateway.RecommendResponseSchema);
      },
      sendFeedback: async () => create(gateway.SendFeedbackResponseSchema),
      similarItems: async () => create(gateway.GetSimilarItemsResponseSchema),
    };
    const admitted = new AdmittedGatewayApi(
      api,
      new Admission({ maxInFlight: 1, maxQueue: 0, queueTimeoutMs: 10, maxEventLoopLagMs: 0, ...fixed }),
    );
    const first = admitted.recommend(create(gateway.RecommendRequestSchema), caller);
    await expect(admitted.sendFeedback(create(gateway.SendFeedbackRequestSchema), caller)).rejects.toBeInstanceOf(OverloadedError);
    await expect(admitted.similarItems(create(gateway.GetSimilarItemsRequestSchema), caller)).rejects.toBeInstanceOf(OverloadedError);
    g.open();
    await first;
    await expect(admitted.similarItems(create(gateway.GetSimilarItemsRequestSchema), caller)).resolves.toBeDefined();
  });
});

describe('Admission with the adaptive limit', () => {
  const adaptive = { maxQueue: 0, queueTimeoutMs: 0, maxEventLoopLagMs: 0, adaptive: true, minInFlight: 1, targetMs: 100 };

  /**
   * Runs `count` requests at once, each taking `ms` on the injected clock, then lets the clock reach the next window;
   * returns how many were admitted. The limit judges a wave's window when the next wave's first answer comes.
   */
  async function wave(admission: Admission, clock: { t: number }, count: number, ms: number): Promise<number> {
    const gates = Array.from({ length: count }, () => gate());
    const runs = gates.map((g) =>
      admission
        .run(() => g.done)
        .then(
          () => true,
          () => false,
        ),
    );
    await Promise.resolve();
    clock.t += ms;
    for (const g of gates) g.open();
    const admitted = (await Promise.all(runs)).filter(Boolean).length;
    clock.t += Math.max(0, WINDOW_MS - ms);
    return admitted;
  }

  it('admits fewer at once while latency is above the target, more again once it falls, and exports the limit', async () => {
    const metrics = new ServiceMetrics('gateway');
    const clock = { t: 0 };
    const admission = new Admission({ ...adaptive, maxInFlight: 8 }, admissionMetrics(metrics), () => clock.t);
    expect(admission.limit).toBe(8);
    expect(await wave(admission, clock, 12, 200)).toBe(8);
    // The window (opened by the first admission) closes with the wave's first answer: with the 7 still in flight
    // (overdue, 200 ms so far) 200 ms against 100 halves the limit.
    expect(admission.limit).toBe(4);
    expect(await metrics.registry.getSingleMetricAsString('gateway_admission_limit')).toMatch(/gateway_admission_limit\{[^}]*\} 4/);
    expect(await wave(admission, clock, 12, 200)).toBe(4);
    expect(admission.limit).toBe(2);
    expect(await wave(admission, clock, 12, 200)).toBe(2);
    expect(admission.limit).toBe(1);
    // Fast again: the window still open (the third wave's slow answer, the fourth's fast one) is judged slow once more
    // (the limit stays at its least); then one more per window, up to maxInFlight.
    const admitted: number[] = [];
    for (let i = 0; i < 11; i++) admitted.push(await wave(admission, clock, 12, 50));
    expect(admitted).toEqual([1, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8]);
    expect(admission.limit).toBe(8);
  });

  it('judges the requests still in flight: past a load step the limit shrinks before any answer, each counted once', async () => {
    const clock = { t: 0 };
    const admission = new Admission({ ...adaptive, maxInFlight: 8 }, undefined, () => clock.t);
    const gates = Array.from({ length: 8 }, () => gate());
    const runs = gates.map((g) => admission.run(() => g.done));
    await Promise.resolve();
    expect(admission.running).toBe(8);
    // A window later, none over the target yet: an arrival (shed, the limit is full) judges nothing.
    clock.t += WINDOW_MS;
    await expect(admission.run(() => Promise.resolve())).rejects.toMatchObject({ reason: 'queue_full' });
    expect(admission.limit).toBe(8);
    // 150 ms in, with no answer yet: the eight are overdue (150 ms against 100): × 100 / 150.
    clock.t += 50;
    await expect(admission.run(() => Promise.resolve())).rejects.toMatchObject({ reason: 'queue_full' });
    expect(admission.limit).toBe(5);
    // When they finish, much later, they are not counted again: nothing is left to judge, the limit holds.
    clock.t += 1000;
    for (const g of gates) g.open();
    await Promise.all(runs);
    clock.t += WINDOW_MS;
    await admission.run(() => Promise.resolve());
    expect(admission.limit).toBe(5);
  });

  it('lets at most the current limit wait (the rest are shed at once, queue_full), within maxQueue', async () => {
    const clock = { t: 0 };
    const admission = new Admission({ ...adaptive, maxInFlight: 8, maxQueue: 6, queueTimeoutMs: 60_000 }, undefined, () => clock.t);
    expect(admission.queueLimit).toBe(6);
    await wave(admission, clock, 8, 400);
    expect(admission.limit).toBe(4);
    expect(admission.queueLimit).toBe(4);
    const gates = Array.from({ length: 10 }, () => gate());
    const outcomes = gates.map((g) =>
      admission
        .run(() => g.done)
        .then(
          () => 'answered',
          (e: OverloadedError) => e.reason,
        ),
    );
    await Promise.resolve();
    expect(admission.running).toBe(4);
    expect(admission.waiting).toBe(4);
    for (const g of gates) g.open();
    expect(await Promise.all(outcomes)).toEqual([...Array<string>(8).fill('answered'), 'queue_full', 'queue_full']);
  });

  it('counts the event-loop lag into the latency it steers by (the wait before a request is read)', async () => {
    const clock = { t: 0 };
    const admission = new Admission({ ...adaptive, maxInFlight: 8 }, undefined, () => clock.t);
    await wave(admission, clock, 8, 60);
    await wave(admission, clock, 8, 60);
    // 60 ms of work alone is under the target.
    expect(admission.limit).toBe(8);
    admission.recordLag(150);
    await wave(admission, clock, 8, 60);
    await wave(admission, clock, 8, 60);
    // 60 ms of work + 150 ms of lag against 100: × 100 / 210.
    expect(admission.limit).toBe(4);
  });
});
