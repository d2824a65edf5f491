import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInteractions, createTable } from './table.js';
import { readText, textLines } from './text-file.js';
import { type Dataset, type Interactions } from './types.js';

/** Age bucket = how many of these edges are <= age: <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+. */
export const ML_AGE_EDGES = [18, 25, 35, 45, 50, 56] as const;
const GENRE_FLAGS = 19;

export function ageBucket(age: number): number {
  let bucket = 0;
  for (const edge of ML_AGE_EDGES) if (age >= edge) bucket++;
  return bucket;
}

/** '0'..'9' for a zip code starting with a digit, '10' otherwise. */
export function zipPrefix(zip: string): string {
  const first = zip.charAt(0);
  return first >= '0' && first <= '9' ? first : '10';
}

/** The year in the last 4 characters of a MovieLens date ('01-Jan-1995'), NaN when there is none. */
export function releaseYear(date: string): number {
  const tail = date.trim().slice(-4);
  return /^\d{4}$/.test(tail) ? Number(tail) : NaN;
}

/** '0' when the year is unknown, else 1 + the decade index from 1900 (1995 → '10'). */
export function releaseDecade(year: number): string {
  return Number.isNaN(year) ? '0' : String(1 + Math.floor((year - 1900) / 10));
}

function fields(file: string, line: number, text: string, separator: string | RegExp, min: number): string[] {
  const parts = text.split(separator);
  if (parts.length < min) throw new Error(`${file} line ${line}: expected at least ${min} fields, got ${parts.length}`);
  return parts;
}

function genreNames(dir: string): string[] {
  const names = Array.from({ length: GENRE_FLAGS }, (_, k) => String(k));
  const path = join(dir, 'u.genre');
  if (!existsSync(path)) return names;
  for (const { text } of textLines(readText(path))) {
    const [name = '', index = ''] = text.split('|');
    const k = Number(index);
    if (Number.isInteger(k) && k >= 0 && k < GENRE_FLAGS && name !== '') names[k] = name;
  }
  return names;
}

/** MovieLens 100K from its directory (u.data, u.user, u.item, optional u.genre); ids are the raw numeric ids. */
export function loadMovieLens100k(dir: string): Dataset {
  const userLines = textLines(readText(join(dir, 'u.user')));
  const userIds: string[] = [];
  const age = new Float64Array(userLines.length);
  const ageBuckets: string[] = [];
  const gender: string[] = [];
  const occupation: string[] = [];
  const zip: string[] = [];
  for (const { line, text } of userLines) {
    const [id, ageText, g, occ, zipCode] = fields('u.user', line, text, '|', 5) as [string, string, string, string, string];
    const years = Number(ageText);
    age[userIds.length] = ageText.trim() === '' ? NaN : years;
    userIds.push(id.trim());
    ageBuckets.push(Number.isNaN(years) ? '' : String(ageBucket(years)));
    gender.push(g.trim());
    occupation.push(occ.trim());
    zip.push(zipPrefix(zipCode.trim()));
  }
  const users = createTable(userIds, {
    age: { kind: 'numeric', values: age },
    age_bucket: { kind: 'categorical', values: ageBuckets },
    gender: { kind: 'categorical', values: gender },
    occupation: { kind: 'categorical', values: occupation },
    zip_prefix: { kind: 'categorical', values: zip },
  });

  const names = genreNames(dir);
  const itemLines = textLines(readText(join(dir, 'u.item')));
  const itemIds: string[] = [];
  const year = new Float64Array(itemLines.length);
  const decade: string[] = [];
  const firstGenre: string[] = [];
  const genres: string[][] = [];
  const category: string[] = [];
  for (const { line, text } of itemLines) {
    const parts = fields('u.item', line, text, '|', 5 + GENRE_FLAGS);
    const y = releaseYear(parts[2]!);
    year[itemIds.length] = y;
    itemIds.push(parts[0]!.trim());
    decade.push(releaseDecade(y));
    const set: string[] = [];
    let first = -1;
    // The flags are the last 19 fields: a title holding '|' would shift them otherwise.
    const flags = parts.length - GENRE_FLAGS;
    for (let g = 0; g < GENRE_FLAGS; g++) {
      if (parts[flags + g]!.trim() === '1') {
        if (first < 0) first = g;
        set.push(names[g]!);
      }
    }
    firstGenre.push(String(Math.max(first, 0)));
    genres.push(set);
    category.push(first < 0 ? '' : names[first]!);
  }
  const items = createTable(itemIds, {
    release_year: { kind: 'numeric', values: year },
    release_decade: { kind: 'categorical', values: decade },
    first_genre: { kind: 'categorical', values: firstGenre },
    genres: { kind: 'multi', values: genres },
    category: { kind: 'categorical', values: category },
  });

  const dataLines = textLines(readText(join(dir, 'u.data')));
  const n = dataLines.length;
  const interactions: Interactions = createInteractions(n);
  for (let r = 0; r < n; r++) {
    const { line, text } = dataLines[r]!;
    const [u, i, rating, time] = fields('u.data', line, text.trim(), /\s+/, 4) as [string, string, string, string];
    const user = users.index.get(u);
    const item = items.index.get(i);
    if (user === undefined) throw new Error(`u.data line ${line}: unknown user ${u}`);
    if (item === undefined) throw new Error(`u.data line ${line}: unknown item ${i}`);
    interactions.user[r] = user;
    interactions.item[r] = item;
    interactions.value[r] = Number(rating);
    interactions.timestamp[r] = Number(time);
  }
  return { name: 'ml-100k', users, items, interactions, positiveThreshold: 4 };
}
