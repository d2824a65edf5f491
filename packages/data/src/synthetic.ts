import { AliasTable } from './alias-table.js';
import { Random } from './random.js';
import { createInteractions, createTable } from './table.js';
import { type Dataset, type Interactions } from './types.js';

export interface SyntheticOptions {
  seed: number;
  users: number;
  items: number;
  /** Impressions per user; defaults to 20. */
  interactionsPerUser?: number;
  /** Defaults to 20. */
  categories?: number;
  /** The newest items, created in the last day of the window; defaults to 0.02. */
  newItemFraction?: number;
  /** User taste clusters; defaults to 8. */
  clusters?: number;
  /** Window start, Unix seconds; defaults to 2025-01-01. */
  startTime?: number;
  /** Window length in days; defaults to 30. */
  days?: number;
}

/** The planted structure behind a synthetic dataset, for tests and for judging what a model learnt. */
export interface SyntheticTruth {
  userCluster: Int32Array;
  itemCategory: Int32Array;
  itemQuality: Float32Array;
  /** clusters × categories click logits (row = cluster). */
  affinity: Float32Array;
  /** Impression weight per item (Zipf over a random popularity rank; new items damped). */
  popularity: Float64Array;
  /** Items from this row on are the new ones. */
  firstNewItem: number;
  /** The click logit offset shared by every impression. */
  bias: number;
}

// Bound once: global lookups are slow in hot loops under jest's sandbox.
const { exp, floor, round } = Math;

const DAY = 86_400;
const AGE_BUCKETS = ['18-24', '25-34', '35-44', '45-54', '55-64', '65+'];
const COUNTRIES = ['us', 'gb', 'de', 'fr', 'jp', 'br', 'in', 'ca', 'es', 'it'];
const GLOBAL_TAGS = ['sale', 'new', 'premium', 'classic', 'bestseller', 'eco', 'limited', 'bundle'];
const TAGS_PER_CATEGORY = 3;
const BIAS = -2;
// Half the impressions follow the user's taste (as a recommender would show), half follow global popularity.
const TARGETED = 0.5;

const sigmoid = (x: number): number => 1 / (1 + exp(-x));

function positiveInteger(name: string, value: number, min = 1): number {
  if (!Number.isInteger(value) || value < min) throw new Error(`generateSynthetic: ${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

/** A dataset with planted, learnable structure, and that structure. Deterministic by seed. */
export function generateSyntheticWithTruth(options: SyntheticOptions): { dataset: Dataset; truth: SyntheticTruth } {
  const users = positiveInteger('users', options.users);
  const items = positiveInteger('items', options.items);
  const perUser = positiveInteger('interactionsPerUser', options.interactionsPerUser ?? 20, 0);
  const categories = positiveInteger('categories', options.categories ?? 20);
  const clusters = positiveInteger('clusters', options.clusters ?? 8);
  const newFraction = options.newItemFraction ?? 0.02;
  if (!(newFraction >= 0 && newFraction < 1)) throw new Error(`generateSynthetic: newItemFraction must be in [0, 1), got ${newFraction}`);
  const start = options.startTime ?? 1_735_689_600;
  const window = (options.days ?? 30) * DAY;
  if (!(window >= DAY)) throw new Error(`generateSynthetic: days must be >= 1, got ${options.days}`);
  const end = start + window;
  const random = new Random(options.seed);

  // Taste: every cluster loves a few categories and is lukewarm about the rest.
  const favourites = Math.max(1, Math.round(categories / 8));
  const affinity = new Float32Array(clusters * categories);
  for (let k = 0; k < clusters; k++) {
    for (let c = 0; c < categories; c++) affinity[k * categories + c] = 0.5 * random.normal();
    const loved = random.permutation(categories).subarray(0, favourites);
    for (const c of loved) affinity[k * categories + c] = 3.5 + 0.3 * random.normal();
  }
  const tasteByCluster = Array.from({ length: clusters }, (_, k) => {
    const weights = new Float64Array(categories);
    for (let c = 0; c < categories; c++) weights[c] = exp(affinity[k * categories + c]!);
    return new AliasTable(weights);
  });

  // Users: a cluster, and attributes that hint at it (segment, age) or do not (country).
  const userCluster = new Int32Array(users);
  const userIds = new Array<string>(users);
  const segment = new Array<string>(users);
  const age = new Array<string>(users);
  const country = new Array<string>(users);
  const clusterAge = Int32Array.from({ length: clusters }, () => random.int(AGE_BUCKETS.length));
  const countries = new AliasTable(COUNTRIES.map((_, k) => 1 / (k + 1)));
  for (let u = 0; u < users; u++) {
    const k = random.int(clusters);
    userCluster[u] = k;
    userIds[u] = `user-${u + 1}`;
    segment[u] = `seg-${random.next() < 0.8 ? k : random.int(clusters)}`;
    age[u] = AGE_BUCKETS[random.next() < 0.5 ? clusterAge[k]! : random.int(AGE_BUCKETS.length)]!;
    country[u] = COUNTRIES[countries.sample(random)]!;
  }

  // Items: category, correlated tags, price, quality, Zipf popularity over a random rank; the newest ones last.
  const categoryNames = Array.from({ length: categories }, (_, c) => `cat-${c}`);
  const categoryTags = categoryNames.map((name) => Array.from({ length: TAGS_PER_CATEGORY }, (_, t) => `${name}-t${t}`));
  const categorySizes = new AliasTable(categoryNames.map((_, c) => 1 / Math.sqrt(c + 1)));
  const basePrice = categoryNames.map(() => Math.log(5 + 95 * random.next()));
  const firstNewItem = Math.max(1, items - Math.round(items * newFraction));
  const rank = random.permutation(items);
  const itemIds = new Array<string>(items);
  const itemCategory = new Int32Array(items);
  const category = new Array<string>(items);
  const tags = new Array<string[]>(items);
  const price = new Float64Array(items);
  const createdAt = new Float64Array(items);
  const quality = new Float32Array(items);
  const popularity = new Float64Array(items);
  for (let i = 0; i < items; i++) {
    const c = categorySizes.sample(random);
    itemIds[i] = `item-${i + 1}`;
    itemCategory[i] = c;
    category[i] = categoryNames[c]!;
    const own = categoryTags[c]!;
    const count = 1 + random.int(3);
    const list = [own[random.int(TAGS_PER_CATEGORY)]!];
    while (list.length < count) {
      const tag = random.next() < 0.6 ? own[random.int(TAGS_PER_CATEGORY)]! : GLOBAL_TAGS[random.int(GLOBAL_TAGS.length)]!;
      if (!list.includes(tag)) list.push(tag);
    }
    tags[i] = list;
    price[i] = round(exp(basePrice[c]! + 0.4 * random.normal()) * 100) / 100;
    quality[i] = 0.5 * random.normal();
    const isNew = i >= firstNewItem;
    const created = isNew ? end - DAY + random.next() * DAY : start - 365 * DAY + random.next() * 365 * DAY;
    createdAt[i] = floor(created * 1000);
    popularity[i] = (isNew ? 0.05 : 1) / (rank[i]! + 1);
  }
  const global = new AliasTable(popularity);
  // Per category: its items, and an alias table over their popularity.
  const members = Array.from({ length: categories }, () => [] as number[]);
  for (let i = 0; i < items; i++) members[itemCategory[i]!]!.push(i);
  const byCategory = members.map((list) => (list.length === 0 ? undefined : new AliasTable(list.map((i) => popularity[i]!))));
  let fallback = 0;
  for (let i = 1; i < items; i++) if (createdAt[i]! < createdAt[fallback]!) fallback = i;

  // Impressions in time order; each user gets exactly interactionsPerUser of them.
  const n = users * perUser;
  const order = new Int32Array(n);
  for (let r = 0; r < n; r++) order[r] = r % users;
  random.shuffle(order);
  const interactions: Interactions = createInteractions(n, order);
  const draw = (k: number): number => {
    if (random.next() < TARGETED) {
      const c = tasteByCluster[k]!.sample(random);
      const table = byCategory[c];
      if (table !== undefined) return members[c]![table.sample(random)]!;
    }
    return global.sample(random);
  };
  for (let r = 0; r < n; r++) {
    const t = start + floor(((r + random.next()) / n) * window);
    const k = userCluster[order[r]!]!;
    let i = draw(k);
    // An item cannot be shown before it exists.
    for (let tries = 0; createdAt[i]! > t * 1000 && tries < 16; tries++) i = draw(k);
    if (createdAt[i]! > t * 1000) i = fallback;
    const logit = BIAS + affinity[k * categories + itemCategory[i]!]! + quality[i]! + 0.5 * random.normal();
    interactions.item[r] = i;
    interactions.value[r] = random.next() < sigmoid(logit) ? 1 : 0;
    interactions.timestamp[r] = t;
  }

  const dataset: Dataset = {
    name: `synthetic-${options.seed}`,
    users: createTable(userIds, {
      segment: { kind: 'categorical', values: segment },
      age_bucket: { kind: 'categorical', values: age },
      country: { kind: 'categorical', values: country },
    }),
    items: createTable(itemIds, {
      category: { kind: 'categorical', values: category },
      tags: { kind: 'multi', values: tags },
      price: { kind: 'numeric', values: price },
      created_at: { kind: 'numeric', values: createdAt },
    }),
    interactions,
    positiveThreshold: 1,
  };
  return { dataset, truth: { userCluster, itemCategory, itemQuality: quality, affinity, popularity, firstNewItem, bias: BIAS } };
}

/** A dataset with planted, learnable structure (see generateSyntheticWithTruth). Deterministic by seed. */
export function generateSynthetic(options: SyntheticOptions): Dataset {
  return generateSyntheticWithTruth(options).dataset;
}
