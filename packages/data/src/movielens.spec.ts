import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cardinality, encodeTable } from './encode.js';
import { fingerprint } from './fingerprint.js';
import { ageBucket, loadMovieLens100k, releaseDecade, releaseYear, zipPrefix } from './movielens.js';
import { ml100kProtocol } from './protocol.js';

const repoRoot = resolve(__dirname, '../../..');
const dir = resolve(repoRoot, '../shared/datasets/ml-100k');
const present = existsSync(join(dir, 'u.data'));
if (!present) console.warn(`MovieLens 100K tests skipped: ${dir} is absent`);
const describeData = present ? describe : describe.skip;

describe('MovieLens field helpers', () => {
  it('buckets ages, zip codes and release years as the reference does', () => {
    expect([1, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 73].map(ageBucket)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]);
    expect(['85711', '01234', 'T8H1N', ''].map(zipPrefix)).toEqual(['8', '0', '10', '10']);
    expect(releaseYear('01-Jan-1995')).toBe(1995);
    expect(releaseYear('')).toBeNaN();
    expect([1995, 1922, 1900, 1899, NaN].map(releaseDecade)).toEqual(['10', '3', '1', '0', '0']);
  });
});

describeData('MovieLens 100K (from ../shared/datasets/ml-100k)', () => {
  // How fast it loads is a benchmark's question (bench:train reports its figures); tests assert no wall-clock time.
  it('loads users, items and ratings', () => {
    const data = loadMovieLens100k(dir);
    expect(data.name).toBe('ml-100k');
    expect(data.positiveThreshold).toBe(4);
    expect(data.users.ids).toHaveLength(943);
    expect(data.items.ids).toHaveLength(1682);
    expect(data.users.ids[0]).toBe('1');
    expect(data.items.ids[1681]).toBe('1682');
    expect(data.interactions.length).toBe(100_000);
    expect(data.users.columns.gender).toMatchObject({ kind: 'categorical' });
    expect(new Set(data.users.columns.occupation!.values as string[]).size).toBe(21);
    const first = data.interactions;
    expect([data.users.ids[first.user[0]!], data.items.ids[first.item[0]!], first.value[0], first.timestamp[0]]).toEqual([
      '196',
      '242',
      3,
      881250949,
    ]);
    // Toy Story: Animation, Children's, Comedy, 1995.
    const toyStory = data.items.index.get('1')!;
    expect((data.items.columns.genres!.values as string[][])[toyStory]).toEqual(['Animation', "Children's", 'Comedy']);
    expect((data.items.columns.first_genre!.values as string[])[toyStory]).toBe('3');
    expect((data.items.columns.category!.values as string[])[toyStory]).toBe('Animation');
    expect((data.items.columns.release_decade!.values as string[])[toyStory]).toBe('10');
    expect((data.items.columns.release_year!.values as Float64Array)[toyStory]).toBe(1995);
    const user1 = data.users.index.get('1')!;
    expect((data.users.columns.age_bucket!.values as string[])[user1]).toBe('1');
    expect((data.users.columns.zip_prefix!.values as string[])[user1]).toBe('8');
  });

  it('splits by the protocol hash and builds the reference features', () => {
    const setup = ml100kProtocol(dir);
    const { split, dataset } = setup;
    const train = split.reduce((sum, s) => sum + s, 0);
    expect(train).toBe(79_902);
    expect(split.length - train).toBe(20_098);
    const names = setup.ranking.features.map((f) => f.name);
    expect(names).toEqual([
      'user_id',
      'item_id',
      'age_bucket',
      'gender',
      'occupation',
      'zip_prefix',
      'release_decade',
      'first_genre',
      'user_train_count',
      'item_train_count',
      'year_scaled',
    ]);
    expect(setup.ranking.features.slice(0, 8).map(cardinality)).toEqual([944, 1683, 7, 2, 21, 11, 11, 19]);
    expect(setup.userTower.features.map((f) => f.name)).toEqual(['user_id', 'age_bucket', 'gender', 'occupation', 'zip_prefix']);
    expect(setup.itemTower.features.map((f) => f.name)).toEqual(['item_id', 'first_genre', 'release_decade']);
    expect(fingerprint(setup)).toBe(fingerprint(ml100kProtocol(dir)));

    // The reference's features, computed again from the raw files.
    const userLines = readFileSync(join(dir, 'u.user'), 'latin1').trim().split('\n');
    const occupations = [...new Set(userLines.map((l) => l.split('|')[3]!))].sort();
    const reference = new Map(
      userLines.map((line) => {
        const [uid, age, gender, occ, zip] = line.split('|') as [string, string, string, string, string];
        const zp = /^\d/.test(zip) ? Number(zip[0]) : 10;
        return [Number(uid), [Number(uid), ageBucket(Number(age)), gender === 'M' ? 0 : 1, occupations.indexOf(occ), zp]];
      }),
    );
    const itemReference = new Map(
      readFileSync(join(dir, 'u.item'), 'latin1')
        .trim()
        .split('\n')
        .map((line) => {
          const p = line.split('|');
          const tail = p[2]!.slice(-4);
          const year = /^\d{4}$/.test(tail) ? Number(tail) : 0;
          const flags = p.slice(5, 24).map(Number);
          const decade = year === 0 ? 0 : 1 + Math.floor((year - 1900) / 10);
          return [Number(p[0]), { sparse: [Number(p[0]), Math.max(0, flags.indexOf(1)), decade], year }];
        }),
    );
    const userCodes = encodeTable(dataset.users, setup.ranking.features, 'user');
    const itemCodes = encodeTable(dataset.items, setup.ranking.features, 'item');
    const ucount = new Map<number, number>();
    const icount = new Map<number, number>();
    const { interactions } = dataset;
    for (let r = 0; r < interactions.length; r++) {
      if (split[r] !== 1) continue;
      const u = Number(dataset.users.ids[interactions.user[r]!]);
      const i = Number(dataset.items.ids[interactions.item[r]!]);
      ucount.set(u, (ucount.get(u) ?? 0) + 1);
      icount.set(i, (icount.get(i) ?? 0) + 1);
    }
    let mismatches = 0;
    for (let r = 0; r < interactions.length; r++) {
      const ur = interactions.user[r]!;
      const ir = interactions.item[r]!;
      const u = Number(dataset.users.ids[ur]);
      const i = Number(dataset.items.ids[ir]);
      const uf = reference.get(u)!;
      const itf = itemReference.get(i)!;
      const expected = [uf[0], itf.sparse[0], uf[1], uf[2], uf[3], uf[4], itf.sparse[2], itf.sparse[1]];
      const got = [
        userCodes.categorical.get('user_id')![ur],
        itemCodes.categorical.get('item_id')![ir],
        userCodes.categorical.get('age_bucket')![ur],
        userCodes.categorical.get('gender')![ur],
        userCodes.categorical.get('occupation')![ur],
        userCodes.categorical.get('zip_prefix')![ur],
        itemCodes.categorical.get('release_decade')![ir],
        itemCodes.categorical.get('first_genre')![ir],
      ];
      const dense = [Math.log1p(ucount.get(u) ?? 0), Math.log1p(icount.get(i) ?? 0), itf.year ? (itf.year - 1900) / 100 : 0];
      const gotDense = [
        userCodes.continuous.get('user_train_count')![ur]!,
        itemCodes.continuous.get('item_train_count')![ir]!,
        itemCodes.continuous.get('year_scaled')![ir]!,
      ];
      if (got.some((v, k) => v !== expected[k]) || gotDense.some((v, k) => Math.abs(v - dense[k]!) > 1e-6)) mismatches++;
    }
    expect(mismatches).toBe(0);
  });
});
