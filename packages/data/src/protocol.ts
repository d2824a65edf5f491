import { loadMovieLens100k } from './movielens.js';
import { hashSplit, trainCounts } from './split.js';
import { withColumns } from './table.js';
import {
  type CategoricalFeature,
  type Column,
  type ContinuousFeature,
  type Feature,
  type FeatureSource,
  type TrainingSetup,
} from './types.js';

const range = (n: number): string[] => Array.from({ length: n }, (_, k) => String(k));

/** All genre flags (mean-pooled over the item's genres) and the exact release year (unknown = 0). */
function sideFeatures(genres: Column, years: string[]): Feature[] {
  const values = genres.values as string[][];
  const names = [...new Set(values.flat())].sort();
  const longest = Math.max(1, ...values.map((v) => v.length));
  const yearVocabulary = ['', ...[...new Set(years.filter((y) => y !== ''))].sort()];
  return [
    { kind: 'multi', name: 'genres', source: 'item', column: 'genres', vocabulary: ['<none>', ...names], unknown: 0, maxValues: longest },
    { kind: 'categorical', name: 'release_year', source: 'item', column: 'release_year_exact', vocabulary: yearVocabulary, unknown: 0 },
  ];
}

function categorical(name: string, source: FeatureSource, vocabulary: string[], unknown = 0): CategoricalFeature {
  return { kind: 'categorical', name, source, column: name, vocabulary, unknown };
}

function continuous(name: string, source: FeatureSource, column: string, transform: ContinuousFeature['transform']): ContinuousFeature {
  return { kind: 'continuous', name, source, column, transform, mean: 0, std: 1, missing: 0 };
}

export interface Ml100kOptions {
  /**
   * The strong track's richer item features in the item tower: every genre flag (mean-pooled) and the
   * exact release year. The plain protocol (default) fixes the features to the reference's.
   */
  itemSide?: boolean;
}

/** /work/shared/datasets/PROTOCOL.md on MovieLens 100K: the hash split, the reference's 8 sparse and 3 dense features. */
export function ml100kProtocol(dir: string, options: Ml100kOptions = {}): TrainingSetup {
  const data = loadMovieLens100k(dir);
  const { interactions } = data;
  const userKey = (u: number) => Number(data.users.ids[u]);
  const itemKey = (i: number) => Number(data.items.ids[i]);
  const split = hashSplit(interactions, userKey, itemKey);
  const counts = trainCounts(interactions, split, data.users.ids.length, data.items.ids.length);
  const users = withColumns(data.users, { train_count: { kind: 'numeric', values: counts.user } });
  const years = data.items.columns.release_year!.values as Float64Array;
  const yearScaled = years.map((y) => (Number.isNaN(y) || y === 0 ? 0 : (y - 1900) / 100));
  const yearText = Array.from(years, (y) => (Number.isNaN(y) || y === 0 ? '' : String(y)));
  const items = withColumns(data.items, {
    train_count: { kind: 'numeric', values: counts.item },
    year_scaled: { kind: 'numeric', values: yearScaled },
    ...(options.itemSide ? { release_year_exact: { kind: 'categorical', values: yearText } } : {}),
  });

  // Table sizes as in the reference: ids index their own embedding row (0 unused), the rest are small ranges.
  const maxUser = Math.max(...data.users.ids.map(Number));
  const maxItem = Math.max(...data.items.ids.map(Number));
  const decades = (data.items.columns.release_decade!.values as string[]).map(Number);
  const occupations = [...new Set(data.users.columns.occupation!.values as string[])].sort();
  const userId = categorical('user_id', 'user', range(maxUser + 1));
  const itemId = categorical('item_id', 'item', range(maxItem + 1));
  const ageBucket = categorical('age_bucket', 'user', range(7));
  const gender = categorical('gender', 'user', ['M', 'F']);
  const occupation = categorical('occupation', 'user', occupations);
  const zipPrefix = categorical('zip_prefix', 'user', range(11), 10);
  const releaseDecade = categorical('release_decade', 'item', range(Math.max(0, ...decades) + 1));
  const firstGenre = categorical('first_genre', 'item', range(19));

  return {
    dataset: { ...data, users, items },
    split,
    splitRule: { kind: 'hash', userKey, itemKey },
    ranking: {
      features: [
        userId,
        itemId,
        ageBucket,
        gender,
        occupation,
        zipPrefix,
        releaseDecade,
        firstGenre,
        continuous('user_train_count', 'user', 'train_count', 'log1p'),
        continuous('item_train_count', 'item', 'train_count', 'log1p'),
        continuous('year_scaled', 'item', 'year_scaled', 'identity'),
      ],
    },
    userTower: { features: [userId, ageBucket, gender, occupation, zipPrefix] },
    itemTower: {
      features: [itemId, firstGenre, releaseDecade, ...(options.itemSide ? sideFeatures(data.items.columns.genres!, yearText) : [])],
    },
  };
}
