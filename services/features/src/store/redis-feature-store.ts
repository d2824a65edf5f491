import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { type common, features } from '@recsys/contracts';
import { Redis, type ChainableCommander, type RedisOptions } from 'ioredis';
import {
  StoreUnavailableError,
  type FeatureStore,
  type FeatureStoreOptions,
  type PopularItemScore,
  type RecordResult,
  type UserWithHistory,
} from './feature-store.js';
import { planEvents } from './event-plan.js';
import { decodeHistory } from './history-codec.js';
import { decodeItems } from './item-codec.js';
import { ADD_LOG_SCORES_LUA, scoreAt } from './popularity-decay.js';
import { validateStoreOptions } from './store-options.js';

export interface RedisFeatureStoreOptions extends FeatureStoreOptions {
  /** Prepended to every key, so several stores (or test runs) can share one Redis database. */
  keyPrefix?: string;
  /** How long a command may wait for its answer before the store reports Redis unavailable. */
  commandTimeoutMs?: number;
  /** How long one connection attempt may take. */
  connectTimeoutMs?: number;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
const DEFAULT_CONNECT_TIMEOUT_MS = 2000;
/** Commands per round trip for bulk writes: big enough to amortise latency, small enough for Redis. */
const WRITE_CHUNK = 1000;
const RECORD_EVENT_COMMAND = 'recsysRecordEvent';

/**
 * Applies one feedback event at most once. SET NX is the idempotency check; the rest runs only
 * when the event id is new, atomically with it, so a replay or a concurrent duplicate is a no-op.
 * KEYS: dedup key, history key, popularity key.
 * ARGV: dedup TTL ms, encoded history entry ('' for none), history cap, log2 weight ('' for none), item id.
 */
const RECORD_EVENT_LUA = `${ADD_LOG_SCORES_LUA}
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
if ARGV[2] ~= '' then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
end
if ARGV[4] ~= '' then
  local current = redis.call('ZSCORE', KEYS[3], ARGV[5])
  if current then
    redis.call('ZADD', KEYS[3], add_log_scores(tonumber(current), tonumber(ARGV[4])), ARGV[5])
  else
    redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
  end
end
return 1
`;

type RecordEventArgs = [
  dedupKey: string,
  historyKey: string,
  popularityKey: string,
  dedupTtlMs: number,
  historyEntry: Buffer | string,
  historyCap: number,
  logWeight: string,
  itemId: string,
];

interface RecordEventPipeline {
  [RECORD_EVENT_COMMAND](...args: RecordEventArgs): ChainableCommander;
}

/** Server answers that mean "not now" rather than "wrong request". */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY|NOREPLICAS|MISCONF)\b/;

/**
 * Client settings that fail fast while Redis is away (no offline queue, one retry) and keep
 * reconnecting forever with capped backoff, so the store recovers by itself when Redis is back.
 */
export function redisClientOptions(options: Pick<RedisFeatureStoreOptions, 'commandTimeoutMs' | 'connectTimeoutMs'>): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempts: number) => Math.min(attempts * 100, 2000),
    lazyConnect: false,
    connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
  };
}

/**
 * Key layout (all under `keyPrefix`):
 *   u:{userId}   string, protobuf binary of features.v1.User
 *   i:{itemId}   string, protobuf binary of features.v1.Item
 *   h:{userId}   list of encoded history entries (history-codec.ts), newest first, capped
 *   pop          sorted set item id -> log2 of the forward-decayed weight sum (popularity-decay.ts)
 *   e:{eventId}  "1" with a TTL: event ids already applied
 */
export class RedisFeatureStore implements FeatureStore {
  private readonly client: Redis;
  private readonly options: RedisFeatureStoreOptions;
  private readonly prefix: string;
  private readonly popularityKey: string;
  private readonly commandTimeoutMs: number;
  /** Why the connection is down, for error messages; cleared once it is ready again. */
  private connectionProblem: string | undefined;
  private closed = false;

  /** Takes ownership of `client` (close() quits it); a URL gets a client with redisClientOptions(). */
  constructor(client: Redis | string, options: RedisFeatureStoreOptions) {
    validateStoreOptions(options);
    this.options = options;
    this.prefix = options.keyPrefix ?? '';
    this.popularityKey = `${this.prefix}pop`;
    this.client = typeof client === 'string' ? new Redis(client, redisClientOptions(options)) : client;
    this.commandTimeoutMs = this.client.options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS;
    // Without an 'error' listener ioredis reports every failed reconnect as an unhandled error.
    this.client.on('error', (err: unknown) => {
      this.connectionProblem = errorMessage(err);
    });
    this.client.on('close', () => {
      this.connectionProblem ??= 'connection closed';
    });
    this.client.on('ready', () => {
      this.connectionProblem = undefined;
    });
    this.client.defineCommand(RECORD_EVENT_COMMAND, { numberOfKeys: 3, lua: RECORD_EVENT_LUA });
  }

  /**
   * Creates a store and waits for the first connection attempt to settle. It resolves even when
   * Redis is unreachable: the store then answers StoreUnavailableError until Redis comes up.
   */
  static async connect(url: string, options: RedisFeatureStoreOptions): Promise<RedisFeatureStore> {
    const store = new RedisFeatureStore(url, options);
    await store.firstAttempt((options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS) + 500);
    return store;
  }

  /** host:port (or socket path) of the Redis server, without credentials. */
  get address(): string {
    const { path, host, port } = this.client.options;
    return path ? path : `${host ?? '127.0.0.1'}:${port ?? 6379}`;
  }

  async getUser(userId: string, historyLimit: number): Promise<UserWithHistory> {
    const limit = Math.floor(historyLimit);
    return this.call(async () => {
      const pipeline = this.client.pipeline().getBuffer(this.userKey(userId));
      // LRANGE 0 -1 would mean "everything", so a limit of 0 skips the list instead.
      if (limit > 0) pipeline.lrangeBuffer(this.historyKey(userId), 0, limit - 1);
      const [raw, entries] = (await this.exec(pipeline)) as [Buffer | null, Buffer[] | undefined];
      return {
        user: raw ? fromBinary(features.UserSchema, raw) : undefined,
        history: entries ? decodeHistory(entries) : [],
      };
    });
  }

  async getItems(itemIds: readonly string[]): Promise<(features.Item | undefined)[]> {
    return decodeItems(await this.getEncodedItems(itemIds));
  }

  async getEncodedItems(itemIds: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    if (itemIds.length === 0) return [];
    return this.call(async () => {
      const raws = await this.client.mgetBuffer(itemIds.map((id) => this.itemKey(id)));
      return raws.map((raw) => raw ?? undefined);
    });
  }

  async upsertUsers(users: readonly features.User[]): Promise<void> {
    await this.writeAll(users, (user) => [this.userKey(user.userId), Buffer.from(toBinary(features.UserSchema, user))]);
  }

  async upsertItems(items: readonly features.Item[]): Promise<void> {
    await this.writeAll(items, (item) => [this.itemKey(item.itemId), Buffer.from(toBinary(features.ItemSchema, item))]);
  }

  /**
   * One pipeline per 1000 events. Should a later chunk fail, the earlier ones stay applied;
   * retrying the whole batch is safe because applied ids are skipped.
   */
  async recordEvents(events: readonly common.FeedbackEvent[]): Promise<RecordResult> {
    if (events.length === 0) return { accepted: 0, duplicates: 0 };
    const planned = planEvents(events, this.options, Date.now());
    return this.call(async () => {
      let accepted = 0;
      for (let start = 0; start < planned.length; start += WRITE_CHUNK) {
        const pipeline = this.client.pipeline();
        const commands = pipeline as unknown as RecordEventPipeline;
        for (const event of planned.slice(start, start + WRITE_CHUNK)) {
          commands[RECORD_EVENT_COMMAND](
            this.eventKey(event.eventId),
            this.historyKey(event.userId),
            this.popularityKey,
            this.options.dedupTtlMs,
            event.historyEntry ?? '',
            this.options.historyCap,
            event.logWeight === undefined ? '' : String(event.logWeight),
            event.itemId,
          );
        }
        for (const applied of await this.exec(pipeline)) accepted += Number(applied);
      }
      return { accepted, duplicates: events.length - accepted };
    });
  }

  async popular(limit: number, nowMs: number): Promise<PopularItemScore[]> {
    const count = Math.floor(limit);
    if (count <= 0) return [];
    return this.call(async () => {
      const flat = await this.client.zrevrange(this.popularityKey, 0, count - 1, 'WITHSCORES');
      const items: PopularItemScore[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        items.push({
          itemId: flat[i]!,
          score: scoreAt(Number(flat[i + 1]), nowMs, this.options.popularityHalfLifeMs),
        });
      }
      return items;
    });
  }

  async ping(): Promise<void> {
    await this.call(() => this.client.ping());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.quit();
    } catch {
      // Not connected (or the answer timed out): drop the socket and stop reconnecting.
      this.client.disconnect();
    }
  }

  private userKey(userId: string): string {
    return `${this.prefix}u:${userId}`;
  }

  private itemKey(itemId: string): string {
    return `${this.prefix}i:${itemId}`;
  }

  private historyKey(userId: string): string {
    return `${this.prefix}h:${userId}`;
  }

  private eventKey(eventId: string): string {
    return `${this.prefix}e:${eventId}`;
  }

  private async writeAll<T>(rows: readonly T[], entry: (row: T) => [string, Buffer]): Promise<void> {
    if (rows.length === 0) return;
    await this.call(async () => {
      for (let start = 0; start < rows.length; start += WRITE_CHUNK) {
        // One MSET per chunk: a single command, and a later duplicate id replaces an earlier one.
        await this.client.mset(new Map(rows.slice(start, start + WRITE_CHUNK).map(entry)));
      }
    });
  }

  /** Runs a pipeline and returns its answers, throwing the first command error. */
  private async exec(pipeline: ChainableCommander): Promise<unknown[]> {
    const results = await pipeline.exec();
    if (!results) throw new Error('Redis pipeline was discarded');
    return results.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
  }

  /** Runs Redis work, turning every connection-level failure into StoreUnavailableError. */
  private async call<T>(work: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError(`Redis feature store for ${this.address} is closed`);
    try {
      return await work();
    } catch (err) {
      throw this.translate(err);
    }
  }

  private translate(err: unknown): Error {
    if (err instanceof StoreUnavailableError) return err;
    const message = errorMessage(err);
    // A reply error that is not transient is a bug in the request, not an outage: keep it as is.
    if (isReplyError(err) && !TRANSIENT_REPLY.test(message)) return err as Error;
    let detail: string;
    if (message === 'Command timed out') detail = `no answer within ${this.commandTimeoutMs} ms`;
    else if (this.client.status !== 'ready' && this.connectionProblem) detail = this.connectionProblem;
    else if (this.client.status !== 'ready') detail = `connection is ${this.client.status}`;
    else detail = message;
    return new StoreUnavailableError(`Redis at ${this.address} is unreachable: ${detail}`, { cause: err });
  }

  /** Resolves once the client is ready, has reported a connection error, or `timeoutMs` passed. */
  private firstAttempt(timeoutMs: number): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.client.off('ready', done);
        this.client.off('error', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.client.on('ready', done);
      this.client.on('error', done);
    });
  }
}

// Duck-typed rather than instanceof: socket errors may come from another realm (e.g. under jest).
function errorMessage(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(err);
}

function isReplyError(err: unknown): boolean {
  return (err as { name?: unknown } | null)?.name === 'ReplyError';
}
