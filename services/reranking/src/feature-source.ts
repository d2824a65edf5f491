import { status, type ServiceError as GrpcError } from '@grpc/grpc-js';
import type { features } from '@recsys/contracts';
import { remainingMs, type ServiceClient } from '@recsys/service-kit';
import type { FeatureSource } from './rule-engine.js';
import type { ItemInfo, SeenEvent } from './rules/rule.js';

export type FeatureClient = ServiceClient<typeof features.FeatureService.method>;

export interface RetryPolicy {
  /** Tries per read, the first included. */
  attempts: number;
  /** One try's timeout (shortened to fit the request's deadline). */
  attemptTimeoutMs: number;
  /** Time kept back from the request's deadline for the rules and the answer. */
  reserveMs: number;
  /** Pause before the n-th retry: n × backoffMs. */
  backoffMs: number;
}

/** Told when a read finally fails (the metrics). */
export interface ReadObserver {
  readFailed(method: string): void;
}

/** Shorter than this is not worth a try: the answer would come after the caller gave up. */
const MIN_ATTEMPT_MS = 5;

/** Codes a second try may cure; anything else (INVALID_ARGUMENT, ...) fails at once. */
const RETRYABLE: ReadonlySet<number> = new Set([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED, status.ABORTED]);

/** The feature service over gRPC, each read retried within the request's deadline. */
export class GrpcFeatureSource implements FeatureSource {
  constructor(
    private readonly client: FeatureClient,
    private readonly policy: RetryPolicy,
    private readonly observer?: ReadObserver,
  ) {}

  async history(userId: string, depth: number): Promise<SeenEvent[]> {
    const response = await this.read('GetUserFeatures', (timeoutMs) =>
      this.client.getUserFeatures({ userId, historyLimit: depth }, { timeoutMs }),
    );
    return seenEvents(response.history);
  }

  async items(itemIds: readonly string[]): Promise<Map<string, ItemInfo>> {
    const found = new Map<string, ItemInfo>();
    if (itemIds.length === 0) return found;
    const response = await this.read('BatchGetItemFeatures', (timeoutMs) =>
      this.client.batchGetItemFeatures({ itemIds: [...itemIds] }, { timeoutMs }),
    );
    for (const result of response.items) {
      if (result.found && result.item)
        found.set(result.item.itemId, { category: result.item.category, createdAtMs: Number(result.item.createdAtMs) });
    }
    return found;
  }

  private async read<T>(method: string, call: (timeoutMs: number) => Promise<T>): Promise<T> {
    try {
      return await withRetry(call, this.policy);
    } catch (error) {
      this.observer?.readFailed(method);
      throw error;
    }
  }
}

/** History entries as the rules read them. */
export function seenEvents(history: readonly features.HistoryEntry[]): SeenEvent[] {
  return history.map((entry) => ({ itemId: entry.itemId, eventType: entry.eventType, timestampMs: Number(entry.timestampMs) }));
}

/** Runs `call` up to `attempts` times while the request's deadline (less the reserve) leaves room for a try. */
export async function withRetry<T>(
  call: (timeoutMs: number) => Promise<T>,
  policy: RetryPolicy,
  left: () => number = remainingMs,
): Promise<T> {
  let last: unknown;
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    if (attempt > 1) {
      // The deadline may have passed during the failed try: no wait then (a negative timeout is a warning), and no try below.
      const waitMs = Math.max(0, Math.min(policy.backoffMs * (attempt - 1), left() / 4));
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
    const budget = left() - policy.reserveMs;
    if (budget < MIN_ATTEMPT_MS) {
      if (last !== undefined) throw retryError(last, attempt - 1);
      throw new Error(`no time left for a try within the request's deadline (${Math.max(0, Math.round(left()))} ms left)`);
    }
    try {
      return await call(Math.min(policy.attemptTimeoutMs, budget));
    } catch (error) {
      last = error;
      if (!RETRYABLE.has((error as Partial<GrpcError>).code ?? -1)) throw error;
    }
  }
  throw retryError(last, policy.attempts);
}

function retryError(last: unknown, attempts: number): Error {
  const message = last instanceof Error ? last.message : String(last);
  return new Error(`${message} (after ${attempts} ${attempts === 1 ? 'try' : 'tries'})`, { cause: last });
}
