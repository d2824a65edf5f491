// Reads of a large per-item table as the stages make them, each against its one-at-a-time baseline in the same run, on
// the same requests in alternating rounds, in catalogues of BENCH_SIZES items:
// - id lookups: a request's candidates (BENCH_LOOKUPS ids, each a JS string decoded from the request) looked up in an
//   IdTable (the item table of pre-ranking and ranking, the pre-ranker's two-tower rows), one by one (rowOf) and in
//   passes over all of them (rowsOf);
// - ids inside a request's bytes: each decoded to a string and looked up with rowsOf (as the stages did), against
//   rowsOf of the byte ranges (no string made);
// - ids of rows: the ids of BENCH_LOOKUPS random rows (an index search's results), one by one (idAt) and in passes
//   (idsAt);
// - item rows copied into a batch: an item's codes, values, creation time and linked row in four arrays (the item
//   table's layout before) against one record per row (ItemTable's);
// - rows of values: BENCH_LOOKUPS random rows of a table of 32 floats per item (the index's vectors, re-scored; the
//   pre-ranker's two-tower vectors) scored against a query, as they come and after touchRows read them ahead.
// Last line: one JSON object.
import { type IdRanges, IdTable, touchRows } from '@recsys/data';
import { envNumber, envNumberList } from '../harness/script-env';
import { quantile, round } from './stats';

const SIZES = envNumberList('BENCH_SIZES', 'count') ?? [50_000, 1_000_000];
const LOOKUPS = envNumber('BENCH_LOOKUPS', 300);
const REQUESTS = envNumber('BENCH_REQUESTS', 400);
const ROUNDS = envNumber('BENCH_ROUNDS', 7);
const DIM = 32;

/** Catalogue ids as the synthetic data names them (item-N) and the benches copy them (item-N~copy). */
const catalogueId = (k: number) => `item-${k % 1000}~${Math.floor(k / 1000)}`;

function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/** A request's ids: fresh strings (as decoded from its bytes), drawn uniformly from the catalogue. */
function requests(size: number, seed: number): string[][] {
  const random = generator(seed);
  return Array.from({ length: REQUESTS }, () =>
    Array.from({ length: LOOKUPS }, () => {
      const id = catalogueId(Math.floor(random() * size));
      // A flat string of its own, not the catalogue's: the service decodes each request's ids anew.
      let copy = '';
      for (let k = 0; k < id.length; k++) copy += String.fromCharCode(id.charCodeAt(k));
      return copy;
    }),
  );
}

/** A request's ids as UTF-8 ranges of one buffer, each behind a two-byte field header as in a Candidate message. */
function rangesOf(ids: readonly string[]): IdRanges {
  const bytes = new Uint8Array(ids.reduce((sum, id) => sum + 2 + id.length, 0));
  const bounds = new Int32Array(2 * ids.length);
  let pos = 0;
  ids.forEach((id, k) => {
    bytes[pos++] = 0x0a;
    bytes[pos++] = id.length;
    for (let j = 0; j < id.length; j++) bytes[pos + j] = id.charCodeAt(j);
    bounds[2 * k] = pos;
    bounds[2 * k + 1] = pos += id.length;
  });
  // Decoded as the stages decode short ASCII ids: a character at a time.
  const id = (k: number) => {
    let text = '';
    for (let j = bounds[2 * k]!; j < bounds[2 * k + 1]!; j++) text += String.fromCharCode(bytes[j]!);
    return text;
  };
  return { length: ids.length, bytes, bounds, id };
}

/** Each request's rows, drawn uniformly. */
function rowRequests(size: number, seed: number): Int32Array[] {
  const random = generator(seed);
  return Array.from({ length: REQUESTS }, () => Int32Array.from({ length: LOOKUPS }, () => Math.floor(random() * size)));
}

/**
 * µs per request of a baseline and a candidate, each a pass over every request returning a checksum, timed in
 * alternating rounds after one warm-up each (medians); throws when their checksums differ.
 */
function compare(name: string, baseline: () => number, candidate: () => number): { baseUs: number; candidateUs: number } {
  const sums = new Set<number>();
  const perRequestUs = (run: () => number) => {
    const started = process.hrtime.bigint();
    sums.add(run());
    return Number(process.hrtime.bigint() - started) / 1e3 / REQUESTS;
  };
  perRequestUs(baseline);
  perRequestUs(candidate);
  const base: number[] = [];
  const next: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      base.push(perRequestUs(baseline));
      next.push(perRequestUs(candidate));
    } else {
      next.push(perRequestUs(candidate));
      base.push(perRequestUs(baseline));
    }
  }
  if (sums.size !== 1) throw new Error(`${name}: the two ways disagree (checksums ${[...sums].join(', ')})`);
  return { baseUs: quantile(base, 0.5), candidateUs: quantile(next, 0.5) };
}

function main(): void {
  const figures: Record<string, number> = { lookups_per_request: LOOKUPS, requests: REQUESTS, rounds: ROUNDS, dim: DIM };
  const report = (
    size: number,
    what: string,
    keys: [string, string, string],
    { baseUs, candidateUs }: { baseUs: number; candidateUs: number },
  ) => {
    console.log(
      `${size} items, ${what}: ${round(baseUs, 1)} → ${round(candidateUs, 1)} us per request of ${LOOKUPS} (${round(baseUs / candidateUs, 2)}x)`,
    );
    figures[`${keys[0]}_us_per_request_${size}`] = round(baseUs, 2);
    figures[`${keys[1]}_us_per_request_${size}`] = round(candidateUs, 2);
    figures[`${keys[2]}_${size}`] = round(baseUs / candidateUs, 3);
  };
  for (const size of SIZES) {
    const table = IdTable.from(Array.from({ length: size }, (_, k) => catalogueId(k)));
    // Ids to rows. Each way returns the sum of what it found (a local: a number kept across calls would be boxed on every add).
    const asked = requests(size, size);
    const found = new Int32Array(LOOKUPS);
    // rowsOf of every request's ids (as `idsOf` gives them), the rows summed.
    const rowsOfAll = <T>(requests: readonly T[], idsOf: (request: T) => readonly string[] | IdRanges) => {
      let sum = 0;
      for (const request of requests) {
        const ids = idsOf(request);
        table.rowsOf(ids, found);
        for (let k = 0; k < ids.length; k++) sum += found[k]!;
      }
      return sum;
    };
    const lookups = compare(
      'rowOf/rowsOf',
      () => {
        let sum = 0;
        for (const ids of asked) for (let k = 0; k < ids.length; k++) sum += table.rowOf(ids[k]!);
        return sum;
      },
      () => rowsOfAll(asked, (ids) => ids),
    );
    report(size, 'ids to rows, rowOf one by one → rowsOf', ['rowof', 'rowsof', 'speedup'], lookups);

    // The same ids inside a request's bytes (as pre-ranking and ranking get them): each decoded to a string and looked
    // up (as the stages did), against the byte ranges looked up with no string made.
    const inBytes = asked.map(rangesOf);
    const fromBytes = compare(
      'strings/ranges',
      () => rowsOfAll(inBytes, (ranges) => Array.from({ length: ranges.length }, (_, k) => ranges.id(k))),
      () => rowsOfAll(inBytes, (ranges) => ranges),
    );
    report(size, 'ids in request bytes to rows, strings → byte ranges', ['strings', 'ranges', 'ranges_speedup'], fromBytes);

    // Rows to ids: the checksum is the ids' total length and first characters.
    const rows = rowRequests(size, size + 1);
    const checksum = (id: string) => id.length + id.charCodeAt(id.length - 1);
    const ids = compare(
      'idAt/idsAt',
      () => {
        let sum = 0;
        for (const r of rows) for (let k = 0; k < r.length; k++) sum += checksum(table.idAt(r[k]!));
        return sum;
      },
      () => {
        let sum = 0;
        for (const r of rows) for (const id of table.idsAt(r)) sum += checksum(id);
        return sum;
      },
    );
    report(size, 'rows to ids, idAt one by one → idsAt', ['idat', 'idsat', 'ids_speedup'], ids);

    // Rows of values scored: a dot product per row with one query.
    const random = generator(size + 2);
    const vectors = Float32Array.from({ length: size * DIM }, () => random() - 0.5);
    const query = Float32Array.from({ length: DIM }, () => random() - 0.5);
    const score = (r: Int32Array) => {
      let sum = 0;
      for (let k = 0; k < r.length; k++) {
        const base = r[k]! * DIM;
        let dot = 0;
        for (let d = 0; d < DIM; d++) dot += vectors[base + d]! * query[d]!;
        sum += dot;
      }
      return sum;
    };
    const scores = compare(
      'touchRows',
      () => rows.reduce((sum, r) => sum + score(r), 0),
      () =>
        rows.reduce((sum, r) => {
          touchRows(vectors, r, DIM);
          return sum + score(r);
        }, 0),
    );
    report(size, `rows of ${DIM} floats scored, as they come → after touchRows`, ['score', 'touched_score', 'touch_speedup'], scores);

    // An item's features copied into a batch (pre-ranking's and ranking's item tables): CODES codes, VALUES float32
    // values, a float64 creation time and a linked row in four arrays, each read ahead (the layout the item table had),
    // against one record per row read ahead once (ItemTable's: time, codes, values, link, made an even number of words).
    const CODES = 2;
    const VALUES = 3;
    const codes = Int32Array.from({ length: size * CODES }, (_, k) => k % 1000);
    const values = Float32Array.from({ length: size * VALUES }, (_, k) => (k % 100) / 8);
    const times = Float64Array.from({ length: size }, (_, k) => 1.7e12 + k);
    const links = Int32Array.from({ length: size }, (_, k) => size - 1 - k);
    const stride = 2 + CODES + VALUES + 1 + ((CODES + VALUES + 1) % 2);
    const records = new ArrayBuffer(size * stride * 4);
    const words = new Int32Array(records);
    const floats = new Float32Array(records);
    const recordTimes = new Float64Array(records);
    for (let r = 0; r < size; r++) {
      recordTimes[(r * stride) >> 1] = times[r]!;
      for (let j = 0; j < CODES; j++) words[r * stride + 2 + j] = codes[r * CODES + j]!;
      for (let j = 0; j < VALUES; j++) floats[r * stride + 2 + CODES + j] = values[r * VALUES + j]!;
      words[r * stride + 2 + CODES + VALUES] = links[r]!;
    }
    const batchCodes = new Int32Array(LOOKUPS * CODES);
    const batchValues = new Float32Array(LOOKUPS * VALUES);
    const batchTimes = new Float64Array(LOOKUPS);
    const batchLinks = new Int32Array(LOOKUPS);
    const batchSum = () => {
      let sum = 0;
      for (let k = 0; k < LOOKUPS; k++)
        sum += batchCodes[k * CODES]! + batchValues[k * VALUES + VALUES - 1]! + batchTimes[k]! + batchLinks[k]!;
      return sum;
    };
    const copies = compare(
      'records',
      () =>
        rows.reduce((sum, r) => {
          touchRows(codes, r, CODES);
          touchRows(values, r, VALUES);
          touchRows(times, r, 1);
          touchRows(links, r, 1);
          for (let k = 0; k < r.length; k++) {
            const row = r[k]!;
            for (let j = 0; j < CODES; j++) batchCodes[k * CODES + j] = codes[row * CODES + j]!;
            for (let j = 0; j < VALUES; j++) batchValues[k * VALUES + j] = values[row * VALUES + j]!;
            batchTimes[k] = times[row]!;
            batchLinks[k] = links[row]!;
          }
          return sum + batchSum();
        }, 0),
      () =>
        rows.reduce((sum, r) => {
          touchRows(words, r, stride);
          for (let k = 0; k < r.length; k++) {
            const base = r[k]! * stride;
            for (let j = 0; j < CODES; j++) batchCodes[k * CODES + j] = words[base + 2 + j]!;
            for (let j = 0; j < VALUES; j++) batchValues[k * VALUES + j] = floats[base + 2 + CODES + j]!;
            batchTimes[k] = recordTimes[base >> 1]!;
            batchLinks[k] = words[base + 2 + CODES + VALUES]!;
          }
          return sum + batchSum();
        }, 0),
    );
    report(size, 'item rows copied, four arrays → one record per row', ['arrays', 'records', 'records_speedup'], copies);
  }
  console.log(JSON.stringify(figures));
}

main();
