/**
 * Where the Redis store keeps what, under a key prefix. One Redis uses the plain layout; a Redis
 * Cluster uses hash tags (`{...}`: only the text inside the first braces picks the slot) so that
 * what one command or script touches lives in one slot:
 *
 *   key                      plain          cluster
 *   user features            u:<user>       u:{<user>}
 *   recent history           h:<user>       h:{<user>}              (slot of the user)
 *   item features            i:<item>       i:{i.<b>}:<item>        (b = bucket of the item, 0..buckets-1)
 *   event marker             e:<event>      e:{<user>}:<event>      (slot of the user)
 *   popularity sorted set    pop            pop:{pop.<s>}           (s = shard of the item, 0..shards-1)
 *   popularity event marker  (the marker)   pe:{pop.<s>}:<event>    (slot of the shard)
 *
 * Ids inside braces are escaped (`\` -> `\\`, `}` -> `\)`) so a brace in an id can neither end the
 * tag early nor leave it empty (an empty tag would hash the whole key: a user's keys would part).
 *
 * Items share slots by bucket so that a batch read is one MGET per bucket (at most `buckets`
 * commands, however large the batch) rather than one per item: with each item in its own slot a
 * 1,000-item read is ~1,000 single-key MGETs, several times slower. Buckets are the unit a cluster
 * balances items by, so there should be several per master (64 suits up to ~8 masters).
 */
export interface RedisKeyLayout {
  readonly cluster: boolean;
  user(userId: string): string;
  history(userId: string): string;
  item(itemId: string): string;
  /** The event's marker beside the user's history: set once, when the event is applied there. */
  event(eventId: string, userId: string): string;
  /** The sorted set that holds the item's popularity. */
  popularity(itemId: string): string;
  /** Cluster: the marker beside the item's popularity shard; plain: undefined (one marker covers both). */
  popularityEvent(eventId: string, itemId: string): string | undefined;
  /** Every popularity sorted set: a read takes the best of each. */
  popularityShards(): string[];
  /** The event log stream (one key, so one slot). */
  eventLog(): string;
  /** A served answer remembered for attributing feedback to it (a hash with a TTL). */
  impression(requestId: string): string;
  /** SCAN patterns of every user and every item key. */
  userPattern(): string;
  itemPattern(): string;
}

export function plainKeyLayout(prefix: string): RedisKeyLayout {
  const popularity = `${prefix}pop`;
  return {
    cluster: false,
    user: (userId) => `${prefix}u:${userId}`,
    history: (userId) => `${prefix}h:${userId}`,
    item: (itemId) => `${prefix}i:${itemId}`,
    event: (eventId) => `${prefix}e:${eventId}`,
    popularity: () => popularity,
    popularityEvent: () => undefined,
    popularityShards: () => [popularity],
    eventLog: () => `${prefix}log`,
    impression: (requestId) => `${prefix}imp:${requestId}`,
    userPattern: () => `${globEscape(prefix)}u:*`,
    itemPattern: () => `${globEscape(prefix)}i:*`,
  };
}

export const MAX_POPULARITY_SHARDS = 1024;
export const MAX_ITEM_BUCKETS = 16384;

export interface ClusterKeyCounts {
  /** How many sorted sets (slots) popularity is spread over. */
  popularityShards: number;
  /** How many slot groups item features are spread over. */
  itemBuckets: number;
}

export function clusterKeyLayout(prefix: string, { popularityShards, itemBuckets }: ClusterKeyCounts): RedisKeyLayout {
  checkCount('popularityShards', popularityShards, MAX_POPULARITY_SHARDS);
  checkCount('itemBuckets', itemBuckets, MAX_ITEM_BUCKETS);
  const shardTag = (itemId: string) => `{pop.${stableHash(itemId) % popularityShards}}`;
  const shards = Array.from({ length: popularityShards }, (_, s) => `${prefix}pop:{pop.${s}}`);
  return {
    cluster: true,
    user: (userId) => `${prefix}u:{${hashTag(userId)}}`,
    history: (userId) => `${prefix}h:{${hashTag(userId)}}`,
    item: (itemId) => `${prefix}i:{i.${stableHash(itemId) % itemBuckets}}:${itemId}`,
    event: (eventId, userId) => `${prefix}e:{${hashTag(userId)}}:${eventId}`,
    popularity: (itemId) => `${prefix}pop:${shardTag(itemId)}`,
    popularityEvent: (eventId, itemId) => `${prefix}pe:${shardTag(itemId)}:${eventId}`,
    popularityShards: () => shards,
    eventLog: () => `${prefix}log:{log}`,
    impression: (requestId) => `${prefix}imp:{${hashTag(requestId)}}`,
    userPattern: () => `${globEscape(prefix)}u:{*`,
    itemPattern: () => `${globEscape(prefix)}i:{i.*`,
  };
}

/** A key prefix as literal text in a SCAN MATCH pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** An id as hash-tag text: never empty (ids are not), never containing `}`, one-to-one. */
export function hashTag(id: string): string {
  return id.replace(/[\\}]/g, (c) => (c === '\\' ? '\\\\' : '\\)'));
}

function checkCount(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${name} must be an integer from 1 to ${max}, got ${value}`);
  }
}

/**
 * FNV-1a (32 bit) of an id's UTF-8 bytes: an item's popularity shard and bucket are this modulo
 * their counts. Part of the stored layout: changing it (or a count) strands data under old keys.
 */
export function stableHash(id: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(id, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
