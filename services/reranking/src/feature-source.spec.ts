import { status } from '@grpc/grpc-js';
import { withRetry, type RetryPolicy } from './feature-source.js';

const policy: RetryPolicy = { attempts: 3, attemptTimeoutMs: 100, reserveMs: 10, backoffMs: 0 };
const grpcError = (code: status, message: string) => Object.assign(new Error(`${code} ${status[code]}: ${message}`), { code });

/** A call that fails with the given errors, then answers; it records the timeout of each try. */
function flaky(failures: Error[]) {
  const timeouts: number[] = [];
  const call = async (timeoutMs: number) => {
    timeouts.push(timeoutMs);
    const failure = failures.shift();
    if (failure) throw failure;
    return 'answer';
  };
  return { call, timeouts };
}

describe('withRetry', () => {
  it('retries UNAVAILABLE and DEADLINE_EXCEEDED up to the attempts', async () => {
    const once = flaky([grpcError(status.UNAVAILABLE, 'down')]);
    await expect(withRetry(once.call, policy, () => Infinity)).resolves.toBe('answer');
    expect(once.timeouts).toEqual([100, 100]);
    const always = flaky([1, 2, 3].map(() => grpcError(status.DEADLINE_EXCEEDED, 'slow')));
    await expect(withRetry(always.call, policy, () => Infinity)).rejects.toThrow('4 DEADLINE_EXCEEDED: slow (after 3 tries)');
    expect(always.timeouts).toHaveLength(3);
  });

  it('does not retry an error a second try cannot cure', async () => {
    const invalid = flaky([grpcError(status.INVALID_ARGUMENT, 'history_limit: must be between 0 and 200')]);
    await expect(withRetry(invalid.call, policy, () => Infinity)).rejects.toThrow('3 INVALID_ARGUMENT');
    expect(invalid.timeouts).toHaveLength(1);
  });

  it('fits each try into the request deadline less the reserve, and stops when no room is left', async () => {
    let left = 60;
    const shrinking = flaky([grpcError(status.UNAVAILABLE, 'down'), grpcError(status.UNAVAILABLE, 'down')]);
    const call = async (timeoutMs: number) => {
      const result = shrinking.call(timeoutMs);
      left -= 50;
      return result;
    };
    await expect(withRetry(call, policy, () => left)).rejects.toThrow('14 UNAVAILABLE: down (after 1 try)');
    expect(shrinking.timeouts).toEqual([50]);
    await expect(withRetry(flaky([]).call, policy, () => 12)).rejects.toThrow(
      "no time left for a try within the request's deadline (12 ms left)",
    );
  });

  it('does not wait a negative time when the deadline passed during a failed try (found by test:resilience)', async () => {
    // Node warns (TimeoutNegativeWarning) on every negative setTimeout: one per request under load past the deadline.
    const timer = jest.spyOn(global, 'setTimeout');
    try {
      let left = 40;
      const late = flaky([grpcError(status.UNAVAILABLE, 'down')]);
      const call = async (timeoutMs: number) => {
        const result = late.call(timeoutMs);
        left = -8;
        return result;
      };
      await expect(withRetry(call, { ...policy, backoffMs: 20 }, () => left)).rejects.toThrow('14 UNAVAILABLE: down (after 1 try)');
      expect(timer.mock.calls.filter(([, ms]) => typeof ms === 'number' && ms < 0)).toEqual([]);
      expect(late.timeouts).toEqual([30]);
    } finally {
      timer.mockRestore();
    }
  });
});
