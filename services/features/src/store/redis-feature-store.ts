import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { type common, features } from '@recsys/contracts';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis, type ChainableCommander, type ClusterOptions } from 'ioredis';
import { REDIS_COMMAND_TIMEOUT_MS, REDIS_CONNECT_TIMEOUT_MS, redisClientOptions } from '@recsys/service-kit';
import {
  InvalidCursorError,
  type ScanPage,
  StoreUnavailableError,
  type FeatureStore,
  type FeatureStoreOptions,
  type PopularItemScore,
  type RecordResult,
  type UserWithHistory,
} from './feature-store.js';
import { planEvents, type PlannedEvent } from './event-plan.js';
import {
  ATTRIBUTE_LUA,
  ATTRIBUTION_VERSIONS_FIELD,
  attributable,
  decodeLogEntry,
  decodeVersions,
  encodeLogEntry,
  encodeVersions,
  positionField,
  type Attribution,
  type EventLogPage,
  type EventLogRange,
} from './event-log.js';
import { decodeHistory } from './history-codec.js';
import { decodeItems } from './item-codec.js';
import { ADD_LOG_SCORES_LUA, byPopularity, scoreAt } from './popularity-decay.js';
import { describeClusterNodes, type RedisClusterNodes } from './redis-cluster-nodes.js';
import { clusterKeyLayout, plainKeyLayout, type RedisKeyLayout } from './redis-keys.js';
import { validateStoreOptions } from './store-options.js';

export interface RedisFeatureStoreOptions extends FeatureStoreOptions {
  /** Prepended to every key, so several stores (or test runs) can share one Redis database. */
  keyPrefix?: string;
  /** How long a command may wait for its answer before the store reports Redis unavailable. */
  commandTimeoutMs?: number;
  /** How long one connection attempt may take. */
  connectTimeoutMs?: number;
  /** Redis Cluster only: how many sorted sets (slots) popularity is spread over. */
  popularityShards?: number;
  /** Redis Cluster only: how many slot groups item features are spread over (a batch read is one MGET per bucket). */
  itemBuckets?: number;
}

export const DEFAULT_POPULARITY_SHARDS = 16;
export const DEFAULT_ITEM_BUCKETS = 64;
const CLUSTER_SLOTS = 16384;

/** Commands per round trip for bulk writes: big enough to amortise latency, small enough for Redis. */
const WRITE_CHUNK = 1000;
const RECORD_EVENT_COMMAND = 'recsysRecordEvent';

/** Lua helpers of the feedback scripts: the history push and the popularity add, written once. */
const EVENT_LUA_HELPERS = `${ADD_LOG_SCORES_LUA}
local function push_history(key, entry, cap)
  if entry == '' then return end
  redis.call('LPUSH', key, entry)
  redis.call('LTRIM', key, 0, tonumber(cap) - 1)
end
local function add_popularity(key, log_weight, item)
  if log_weight == '' then return end
  local current = redis.call('ZSCORE', key, item)
  if current then
    redis.call('ZADD', key, add_log_scores(tonumber(current), tonumber(log_weight)), item)
  else
    redis.call('ZADD', key, log_weight, item)
  end
end
`;

/**
 * One Redis: applies one feedback event at most once. SET NX is the idempotency check; the rest runs
 * only when the event id is new, atomically with it, so a replay or a concurrent duplicate is a no-op.
 * KEYS: event marker, history key, popularity key.
 * ARGV: dedup TTL ms, encoded history entry ('' for none), history cap, log2 weight ('' for none), item id.
 */
const RECORD_EVENT_LUA = `${EVENT_LUA_HELPERS}
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
push_history(KEYS[2], ARGV[2], ARGV[3])
add_popularity(KEYS[3], ARGV[4], ARGV[5])
return 1
`;

/**
 * Redis Cluster, the user's slot: the event's history part, at most once (its own marker).
 * KEYS: event marker (user's slot), history key. ARGV: dedup TTL ms, encoded entry ('' for none), history cap.
 */
const RECORD_HISTORY_LUA = `${EVENT_LUA_HELPERS}
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
push_history(KEYS[2], ARGV[2], ARGV[3])
return 1
`;

/**
 * Redis Cluster, the popularity shard's slot: the event's popularity part, at most once (its own marker).
 * KEYS: popularity event marker, popularity shard. ARGV: dedup TTL ms, log2 weight, item id.
 */
const RECORD_POPULARITY_LUA = `${EVENT_LUA_HELPERS}
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
add_popularity(KEYS[2], ARGV[2], ARGV[3])
return 1
`;

const RECORD_HISTORY_COMMAND = 'recsysRecordHistory';
const ATTRIBUTE_COMMAND = 'recsysAttribute';
const ATTRIBUTE_BUFFER_COMMAND = 'recsysAttributeBuffer';
/** The stream entry's one field: the EventLogEntry (without its id) as protobuf bytes. */
const LOG_FIELD = 'e';

/** One command (or script: exactly one answer) on one key; on a cluster the ops are grouped by the node serving the key. */
interface KeyOp {
  key: string;
  add: (pipeline: ChainableCommander) => void;
}
const RECORD_POPULARITY_COMMAND = 'recsysRecordPopularity';

type RecordEventArgs = [
  eventKey: string,
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
  [RECORD_HISTORY_COMMAND](
    eventKey: string,
    historyKey: string,
    dedupTtlMs: number,
    entry: Buffer | string,
    cap: number,
  ): ChainableCommander;
  [RECORD_POPULARITY_COMMAND](
    eventKey: string,
    popularityKey: string,
    dedupTtlMs: number,
    logWeight: string,
    itemId: string,
  ): ChainableCommander;
  /** The Buffer form (ioredis defines it beside the command): the versions are protobuf bytes. */
  [ATTRIBUTE_BUFFER_COMMAND](impressionKey: string, itemId: string, eventType: number): ChainableCommander;
}

/**
 * Server answers that mean "not now" rather than "wrong request". On a cluster a redirection the
 * client could not follow (MOVED, ASK: e.g. to a master that is down) is one of them.
 */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY|NOREPLICAS|MISCONF|MOVED|ASK)\b/;

/**
 * Cluster client settings: service-kit's redisClientOptions() timeouts and retry count per node, no offline
 * queue (a call while the cluster is not ready fails at once), and the cluster reconnects forever
 * with capped backoff. Credentials and TLS apply to every node.
 */
export function redisClusterOptions(
  cluster: RedisClusterNodes,
  options: Pick<RedisFeatureStoreOptions, 'commandTimeoutMs' | 'connectTimeoutMs'>,
): ClusterOptions {
  // Per node: the timeouts and retries of one Redis; the cluster owns queueing and reconnecting.
  const { connectTimeout, commandTimeout, maxRetriesPerRequest, retryStrategy } = redisClientOptions(options);
  return {
    enableOfflineQueue: false,
    clusterRetryStrategy: retryStrategy,
    slotsRefreshTimeout: connectTimeout,
    redisOptions: {
      connectTimeout,
      commandTimeout,
      maxRetriesPerRequest,
      ...(cluster.username !== undefined ? { username: cluster.username } : {}),
      ...(cluster.password !== undefined ? { password: cluster.password } : {}),
      ...(cluster.tls ? { tls: {} } : {}),
    },
  };
}

/**
 * The feature store on one Redis or on a Redis Cluster; the key layout is in redis-keys.ts.
 *
 * On a cluster every call keeps the one-round-trip property per node: the commands of a call are
 * grouped by the node that serves their slot, one pipeline per node, all nodes at once. A batch item
 * read is one MGET per slot (items share slots by bucket), pipelined per node, answered in request
 * order. A feedback event is two scripts, each atomic and idempotent in its own slot: the history
 * part in the user's slot and the popularity part in the item's popularity shard, each with its own
 * event marker; a retried batch completes whichever part a failure left out.
 */
export class RedisFeatureStore implements FeatureStore {
  private readonly client: Redis | Cluster;
  /** Set when the client is a Redis Cluster. */
  private readonly cluster: Cluster | undefined;
  private readonly keys: RedisKeyLayout;
  private readonly options: RedisFeatureStoreOptions;
  private readonly commandTimeoutMs: number;
  /** host:port (or socket path) of the Redis, or the cluster's seed list; no credentials. */
  private readonly where: string;
  /** "Redis at <where>" or "Redis Cluster (<where>)", for error messages. */
  private readonly label: string;
  /** Why the connection is down, for error messages; cleared once it is ready again. */
  private connectionProblem: string | undefined;
  private closed = false;

  /**
   * Takes ownership of `client` (close() quits it); a URL gets a client with service-kit's redisClientOptions().
   * `clusterSeeds` names a cluster in error messages (host:port list, no credentials).
   */
  constructor(client: Redis | Cluster | string, options: RedisFeatureStoreOptions, clusterSeeds?: string) {
    validateStoreOptions(options);
    this.options = options;
    const prefix = options.keyPrefix ?? '';
    this.client = typeof client === 'string' ? new Redis(client, redisClientOptions(options)) : client;
    if (this.client instanceof Cluster) {
      this.cluster = this.client;
      this.keys = clusterKeyLayout(prefix, {
        popularityShards: options.popularityShards ?? DEFAULT_POPULARITY_SHARDS,
        itemBuckets: options.itemBuckets ?? DEFAULT_ITEM_BUCKETS,
      });
      this.commandTimeoutMs = this.cluster.options.redisOptions?.commandTimeout ?? REDIS_COMMAND_TIMEOUT_MS;
      this.where = clusterSeeds ?? 'seed nodes not named';
      this.label = `Redis Cluster (${this.where})`;
    } else {
      this.cluster = undefined;
      this.keys = plainKeyLayout(prefix);
      this.commandTimeoutMs = this.client.options.commandTimeout ?? REDIS_COMMAND_TIMEOUT_MS;
      const { path, host, port } = this.client.options;
      this.where = path ? path : `${host ?? '127.0.0.1'}:${port ?? 6379}`;
      this.label = `Redis at ${this.where}`;
    }
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
    this.client.defineCommand(ATTRIBUTE_COMMAND, { numberOfKeys: 1, lua: ATTRIBUTE_LUA });
    if (this.cluster) {
      this.client.defineCommand(RECORD_HISTORY_COMMAND, { numberOfKeys: 2, lua: RECORD_HISTORY_LUA });
      this.client.defineCommand(RECORD_POPULARITY_COMMAND, { numberOfKeys: 2, lua: RECORD_POPULARITY_LUA });
    } else {
      this.client.defineCommand(RECORD_EVENT_COMMAND, { numberOfKeys: 3, lua: RECORD_EVENT_LUA });
    }
  }

  /**
   * Creates a store and waits for the first connection attempt to settle. It resolves even when
   * Redis is unreachable: the store then answers StoreUnavailableError until Redis comes up.
   */
  static async connect(url: string, options: RedisFeatureStoreOptions): Promise<RedisFeatureStore> {
    const store = new RedisFeatureStore(url, options);
    await store.firstAttempt((options.connectTimeoutMs ?? REDIS_CONNECT_TIMEOUT_MS) + 500);
    return store;
  }

  /** As connect(), on a Redis Cluster reached through any of the seed nodes. */
  static async connectCluster(cluster: RedisClusterNodes, options: RedisFeatureStoreOptions): Promise<RedisFeatureStore> {
    const client = new Cluster(cluster.nodes, redisClusterOptions(cluster, options));
    const store = new RedisFeatureStore(client, options, describeClusterNodes(cluster));
    await store.firstAttempt((options.connectTimeoutMs ?? REDIS_CONNECT_TIMEOUT_MS) + 500);
    return store;
  }

  /** host:port (or socket path) of the Redis server, or a cluster's seed list, without credentials. */
  get address(): string {
    return this.where;
  }

  /** The key layout in use (hash-tagged on a cluster). */
  get keyLayout(): RedisKeyLayout {
    return this.keys;
  }

  async getUser(userId: string, historyLimit: number): Promise<UserWithHistory> {
    const limit = Math.floor(historyLimit);
    return this.call(async () => {
      // On a cluster both keys carry the user's hash tag: one slot, so one pipeline to one node.
      const pipeline = this.client.pipeline().getBuffer(this.keys.user(userId));
      // LRANGE 0 -1 would mean "everything", so a limit of 0 skips the list instead.
      if (limit > 0) pipeline.lrangeBuffer(this.keys.history(userId), 0, limit - 1);
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
    return this.call(() => this.readKeys(itemIds.map((id) => this.keys.item(id))));
  }

  /** The values of string keys, in key order (undefined where absent): one MGET, or on a cluster one per slot pipelined per node. */
  private async readKeys(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return [];
    if (!this.cluster) {
      const raws = await this.client.mgetBuffer(keys as string[]);
      return raws.map((raw) => raw ?? undefined);
    }
    // One MGET per slot (per item bucket), pipelined per node; answers go back to their places.
    const bySlot = groupBySlot(keys);
    const slots = [...bySlot.keys()];
    const answers = await this.perNode(slots, (pipeline, slot) => pipeline.mgetBuffer(bySlot.get(slot)!.map((i) => keys[i]!)));
    const values: (Uint8Array | undefined)[] = new Array(keys.length);
    slots.forEach((slot, s) => {
      const raws = answers[s] as (Buffer | null)[];
      bySlot.get(slot)!.forEach((index, k) => (values[index] = raws[k] ?? undefined));
    });
    return values;
  }

  async scanItems(cursor: string, limit: number): Promise<ScanPage> {
    return this.scan(this.keys.itemPattern(), cursor, limit);
  }

  async scanUsers(cursor: string, limit: number): Promise<ScanPage> {
    return this.scan(this.keys.userPattern(), cursor, limit);
  }

  /**
   * SCAN over the keys a pattern matches (the layout's user or item keys), then their bytes in one read. One Redis: the
   * cursor is Redis's. A cluster: each master is scanned in turn (ordered by address), the cursor `<master>:<its
   * cursor>`; a scan that spans a resharding may miss or repeat rows that moved.
   */
  private async scan(pattern: string, cursor: string, limit: number): Promise<ScanPage> {
    const count = Math.max(1, Math.floor(limit));
    if (!this.cluster) {
      const at = cursor === '' ? '0' : /^[1-9]\d{0,19}$/.test(cursor) ? cursor : undefined;
      if (at === undefined) throw new InvalidCursorError(cursor, "'' or a Redis SCAN cursor given by an earlier page");
      return this.call(async () => {
        // Other keys (histories, the event log's answers, the other kind of row) can outnumber the matched ones: SCAN
        // goes on until the page holds about `limit` keys, the keyspace ends, or a bounded number of steps, so a page
        // is rarely empty.
        let next = at;
        const keys: string[] = [];
        for (let step = 0; step < SCAN_STEPS_PER_PAGE && keys.length < count; step++) {
          const [following, found] = await this.client.scan(next, 'MATCH', pattern, 'COUNT', count - keys.length);
          keys.push(...found);
          next = following;
          if (next === '0') break;
        }
        return { rows: present(await this.readKeys(keys)), next: next === '0' ? '' : next };
      });
    }
    const match = cursor === '' ? ['', '0', '0'] : /^(\d{1,4}):(\d{1,20})$/.exec(cursor);
    if (!match) throw new InvalidCursorError(cursor, "'' or <master>:<cursor> given by an earlier page");
    return this.call(async () => {
      const masters = this.cluster!.nodes('master').sort((a, b) => nodeName(a).localeCompare(nodeName(b)));
      const node = Number(match[1]);
      if (node >= masters.length) throw new InvalidCursorError(cursor, `a master below ${masters.length}`);
      const [next, keys] = await masters[node]!.scan(match[2]!, 'MATCH', pattern, 'COUNT', count);
      const following = next !== '0' ? `${node}:${next}` : node + 1 < masters.length ? `${node + 1}:0` : '';
      return { rows: present(await this.readKeys(keys)), next: following };
    });
  }

  async upsertUsers(users: readonly features.User[]): Promise<void> {
    await this.writeAll(users, (user) => [this.keys.user(user.userId), Buffer.from(toBinary(features.UserSchema, user))]);
  }

  async upsertItems(items: readonly features.Item[]): Promise<void> {
    await this.writeAll(items, (item) => [this.keys.item(item.itemId), Buffer.from(toBinary(features.ItemSchema, item))]);
  }

  /**
   * One pipeline per 1000 events (on a cluster: per node). Should a later chunk fail, the earlier
   * ones stay applied; retrying the whole batch is safe because applied ids are skipped.
   */
  async recordEvents(events: readonly common.FeedbackEvent[], unknownItems?: ReadonlySet<string>): Promise<RecordResult> {
    if (events.length === 0) return { accepted: 0, duplicates: 0 };
    const planned = planEvents(events, this.options, Date.now(), unknownItems);
    return this.call(async () => {
      let accepted = 0;
      for (let start = 0; start < planned.length; start += WRITE_CHUNK) {
        const chunk = planned.slice(start, start + WRITE_CHUNK);
        accepted += this.cluster ? await this.recordOnCluster(chunk) : await this.recordOnOne(chunk);
      }
      return { accepted, duplicates: events.length - accepted };
    });
  }

  async popular(limit: number, nowMs: number): Promise<PopularItemScore[]> {
    const count = Math.floor(limit);
    if (count <= 0) return [];
    return this.call(async () => {
      const shards = this.keys.popularityShards();
      // Each item lives in one shard, so the best `count` of each shard hold the best `count` overall.
      const answers = this.cluster
        ? await this.perNode(
            shards,
            (pipeline, shard) => pipeline.zrevrange(shard, 0, count - 1, 'WITHSCORES'),
            (shard) => shard,
          )
        : [await this.client.zrevrange(shards[0]!, 0, count - 1, 'WITHSCORES')];
      const ranked: { itemId: string; logScore: number }[] = [];
      for (const flat of answers as string[][]) {
        for (let i = 0; i + 1 < flat.length; i += 2) ranked.push({ itemId: flat[i]!, logScore: Number(flat[i + 1]) });
      }
      if (answers.length > 1) ranked.sort(byPopularity);
      return ranked.slice(0, count).map(({ itemId, logScore }) => ({
        itemId,
        score: scoreAt(logScore, nowMs, this.options.popularityHalfLifeMs),
      }));
    });
  }

  /** On a cluster: every master that serves slots answers (a call may touch any slot). */
  async logImpressions(impressions: readonly features.Impression[]): Promise<void> {
    if (impressions.length === 0) return;
    const ops: KeyOp[] = [];
    const minId = this.logMinId();
    const window = this.options.attributionWindowMs;
    for (const impression of impressions) {
      ops.push(this.xadd(minId, encodeLogEntry({ case: 'impression', value: impression })));
      const key = this.keys.impression(impression.requestId);
      const fields = new Map<string, Buffer | number>([[ATTRIBUTION_VERSIONS_FIELD, Buffer.from(encodeVersions(impression.versions))]]);
      for (const item of impression.items) fields.set(positionField(item.itemId), item.position);
      ops.push({ key, add: (pipeline) => pipeline.hset(key, fields) }, { key, add: (pipeline) => pipeline.pexpire(key, window) });
    }
    await this.call(() => this.runOps(ops));
  }

  async logFeedback(events: readonly common.FeedbackEvent[]): Promise<(Attribution | undefined)[]> {
    if (events.length === 0) return [];
    const minId = this.logMinId();
    const ops: KeyOp[] = [];
    const attributionOp = new Map<number, number>();
    events.forEach((event, index) => {
      ops.push(this.xadd(minId, encodeLogEntry({ case: 'feedback', value: event })));
      if (!attributable(event)) return;
      const key = this.keys.impression(event.requestId);
      attributionOp.set(index, ops.length);
      ops.push({
        key,
        add: (pipeline) => (pipeline as unknown as RecordEventPipeline)[ATTRIBUTE_BUFFER_COMMAND](key, event.itemId, event.eventType),
      });
    });
    const answers = await this.call(() => this.runOps(ops));
    return events.map((_, index) => {
      const op = attributionOp.get(index);
      const answer = op === undefined ? null : (answers[op] as [Buffer, Buffer] | null);
      if (!answer) return undefined;
      return { versions: decodeVersions(answer[0]), position: Number(answer[1].toString()) };
    });
  }

  async readEventLog(range: EventLogRange): Promise<EventLogPage> {
    const start = range.afterId !== '' ? `(${range.afterId}` : range.sinceMs > 0 ? `${range.sinceMs}-0` : '-';
    const end = range.untilMs > 0 ? String(range.untilMs) : '+';
    const raw = (await this.call(() => this.client.xrangeBuffer(this.keys.eventLog(), start, end, 'COUNT', range.limit))) as unknown as [
      Buffer,
      Buffer[],
    ][];
    const entries = raw.map(([id, fields]) => {
      const at = fields.findIndex((field, i) => i % 2 === 0 && field.toString() === LOG_FIELD);
      return decodeLogEntry(id.toString(), at < 0 ? new Uint8Array() : fields[at + 1]!);
    });
    return { entries, nextId: entries.length === range.limit && entries.length > 0 ? entries[entries.length - 1]!.id : '' };
  }

  async ping(): Promise<void> {
    await this.call(async () => {
      if (!this.cluster) {
        await this.client.ping();
        return;
      }
      const cluster = this.cluster;
      if (cluster.status !== 'ready') throw new Error(`cluster connection is ${cluster.status}`);
      const owners = new Set<string>();
      for (let slot = 0; slot < CLUSTER_SLOTS; slot++) {
        const owner = cluster.slots[slot]?.[0];
        if (!owner) throw new Error(`no node serves slot ${slot}`);
        owners.add(owner);
      }
      const connected = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]));
      await Promise.all(
        [...owners].map(async (owner) => {
          const node = connected.get(owner);
          if (!node) throw new Error(`node ${owner} is not connected`);
          try {
            await node.ping();
          } catch (err) {
            throw new Error(`node ${owner}: ${errorMessage(err)}`, { cause: err });
          }
        }),
      );
    });
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

  private async recordOnOne(chunk: readonly PlannedEvent[]): Promise<number> {
    const pipeline = this.client.pipeline();
    const commands = pipeline as unknown as RecordEventPipeline;
    for (const event of chunk) {
      commands[RECORD_EVENT_COMMAND](
        this.keys.event(event.eventId, event.userId),
        this.keys.history(event.userId),
        this.keys.popularity(event.itemId),
        this.options.dedupTtlMs,
        event.historyEntry ?? '',
        this.options.historyCap,
        event.logWeight === undefined ? '' : String(event.logWeight),
        event.itemId,
      );
    }
    let accepted = 0;
    for (const applied of await this.exec(pipeline)) accepted += Number(applied);
    return accepted;
  }

  /**
   * Two scripts per event (the popularity one only when it has a weight), each in its own slot and
   * idempotent by its own marker. An event counts as accepted when either part was applied now: a
   * replay applies neither; a retry after a partial failure applies the part that was missing.
   */
  private async recordOnCluster(chunk: readonly PlannedEvent[]): Promise<number> {
    const ops: { key: string; event: number; add: (commands: RecordEventPipeline) => void }[] = [];
    chunk.forEach((event, index) => {
      const eventKey = this.keys.event(event.eventId, event.userId);
      ops.push({
        key: eventKey,
        event: index,
        add: (commands) =>
          commands[RECORD_HISTORY_COMMAND](
            eventKey,
            this.keys.history(event.userId),
            this.options.dedupTtlMs,
            event.historyEntry ?? '',
            this.options.historyCap,
          ),
      });
      if (event.logWeight === undefined) return;
      const markerKey = this.keys.popularityEvent(event.eventId, event.itemId)!;
      const logWeight = String(event.logWeight);
      ops.push({
        key: markerKey,
        event: index,
        add: (commands) =>
          commands[RECORD_POPULARITY_COMMAND](
            markerKey,
            this.keys.popularity(event.itemId),
            this.options.dedupTtlMs,
            logWeight,
            event.itemId,
          ),
      });
    });
    // Per node the scripts keep the planned (time) order, so a user's history ends newest first.
    const answers = await this.perNode(
      ops,
      (pipeline, op) => op.add(pipeline as unknown as RecordEventPipeline),
      (op) => op.key,
    );
    const applied = new Array<boolean>(chunk.length).fill(false);
    answers.forEach((answer, i) => {
      if (Number(answer) === 1) applied[ops[i]!.event] = true;
    });
    return applied.filter(Boolean).length;
  }

  /** Entries older than the retention go with each append (exact MINID: nothing older is kept). */
  private logMinId(): string {
    return `${Math.max(0, Date.now() - this.options.eventLogRetentionMs)}-0`;
  }

  private xadd(minId: string, entry: Uint8Array): KeyOp {
    const key = this.keys.eventLog();
    return { key, add: (pipeline) => pipeline.xadd(key, 'MINID', '=', minId, '*', LOG_FIELD, Buffer.from(entry)) };
  }

  /** One pipeline on one Redis; on a cluster one per node (perNode). Answers in the ops' order. */
  private async runOps(ops: readonly KeyOp[]): Promise<unknown[]> {
    if (!this.cluster) {
      const pipeline = this.client.pipeline();
      for (const op of ops) op.add(pipeline);
      return this.exec(pipeline);
    }
    return this.perNode(
      ops,
      (pipeline, op) => op.add(pipeline),
      (op) => op.key,
    );
  }

  private async writeAll<T>(rows: readonly T[], entry: (row: T) => [string, Buffer]): Promise<void> {
    if (rows.length === 0) return;
    await this.call(async () => {
      for (let start = 0; start < rows.length; start += WRITE_CHUNK) {
        const entries = rows.slice(start, start + WRITE_CHUNK).map(entry);
        if (this.cluster) {
          // One MSET per slot (items share slots by bucket), pipelined per node; within a slot the
          // rows keep their order, so a later duplicate id still wins.
          const bySlot = groupBySlot(entries.map(([key]) => key));
          await this.perNode([...bySlot.keys()], (pipeline, slot) => pipeline.mset(new Map(bySlot.get(slot)!.map((i) => entries[i]!))));
        } else {
          // One MSET per chunk: a single command, and a later duplicate id replaces an earlier one.
          await this.client.mset(new Map(entries));
        }
      }
    });
  }

  /**
   * Cluster only: sends each unit's command(s) in one pipeline per node (by the node serving the
   * unit's slot), all nodes at once, and returns the answers in the units' order. A unit is a slot
   * number, or anything `keyOf` gives a key for. Each pipeline keeps its units' order.
   */
  private async perNode<U>(
    units: readonly U[],
    add: (pipeline: ChainableCommander, unit: U) => void,
    keyOf?: (unit: U) => string,
  ): Promise<unknown[]> {
    const cluster = this.cluster!;
    if (cluster.status !== 'ready') throw new Error(`cluster connection is ${cluster.status}`);
    const groups = new Map<string, number[]>();
    units.forEach((unit, index) => {
      const slot = keyOf ? calculateSlot(keyOf(unit)) : (unit as number);
      const owners = cluster.slots[slot];
      if (!owners || owners.length === 0) throw new Error(`no node serves slot ${slot}`);
      const group = owners.join(';');
      const members = groups.get(group);
      if (members) members.push(index);
      else groups.set(group, [index]);
    });
    const answers = new Array<unknown>(units.length);
    await Promise.all(
      [...groups.values()].map(async (members) => {
        const pipeline = cluster.pipeline();
        for (const index of members) add(pipeline, units[index]!);
        const results = await this.exec(pipeline);
        members.forEach((index, k) => (answers[index] = results[k]));
      }),
    );
    return answers;
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
    if (this.closed) throw new StoreUnavailableError(`Redis feature store for ${this.where} is closed`);
    try {
      return await work();
    } catch (err) {
      const error = this.translate(err);
      // ioredis drops a node whose connection ended and does not always learn by itself that it is
      // back (or that its slots moved): each outage seen asks for a fresh slot map (coalesced).
      if (this.cluster && error instanceof StoreUnavailableError) this.cluster.refreshSlotsCache();
      throw error;
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
    return new StoreUnavailableError(`${this.label} is unreachable: ${detail}`, { cause: err });
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

/** SCAN calls one page of a scan (ScanItems, ListUsers) may make on one Redis. */
const SCAN_STEPS_PER_PAGE = 64;

/** The values read, leaving out keys deleted since the scan named them. */
function present(values: readonly (Uint8Array | undefined)[]): Uint8Array[] {
  return values.filter((bytes): bytes is Uint8Array => bytes !== undefined);
}

function nodeName(node: Redis): string {
  return `${node.options.host ?? ''}:${node.options.port ?? 0}`;
}

/** Indices of the keys per slot, in key order. */
function groupBySlot(keys: readonly string[]): Map<number, number[]> {
  const bySlot = new Map<number, number[]>();
  keys.forEach((key, index) => {
    const slot = calculateSlot(key);
    const members = bySlot.get(slot);
    if (members) members.push(index);
    else bySlot.set(slot, [index]);
  });
  return bySlot;
}

// Duck-typed rather than instanceof: socket errors may come from another realm (e.g. under jest).
function errorMessage(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(err);
}

function isReplyError(err: unknown): boolean {
  return (err as { name?: unknown } | null)?.name === 'ReplyError';
}
