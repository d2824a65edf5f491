// Id lookups as the stages make them: a request's candidates (BENCH_LOOKUPS ids, each a JS string decoded from the
// request) looked up in an IdTable of a catalogue of BENCH_SIZES ids (the item table of pre-ranking and ranking, the
// pre-ranker's two-tower rows), in one pass per id (rowOf, the baseline) and in passes over all of them (rowsOf), on
// the same requests in alternating rounds. Last line: one JSON object.
import { IdTable } from '@recsys/data';
import { envNumber, envNumberList } from '../harness/script-env';
import { quantile, round } from './stats';

const SIZES = envNumberList('BENCH_SIZES', 'count') ?? [50_000, 1_000_000];
const LOOKUPS = envNumber('BENCH_LOOKUPS', 300);
const REQUESTS = envNumber('BENCH_REQUESTS', 400);
const ROUNDS = envNumber('BENCH_ROUNDS', 7);

/** Catalogue ids as the synthetic data names them (item-N) and the benches copy them (item-N~copy). */
const catalogueId = (k: number) => `item-${k % 1000}~${Math.floor(k / 1000)}`;

/** A request's ids: fresh strings (as decoded from its bytes), drawn uniformly from the catalogue. */
function requests(size: number, seed: number): string[][] {
  let state = seed >>> 0;
  const random = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
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

function main(): void {
  const figures: Record<string, number> = { lookups_per_request: LOOKUPS, requests: REQUESTS, rounds: ROUNDS };
  for (const size of SIZES) {
    const table = IdTable.from(Array.from({ length: size }, (_, k) => catalogueId(k)));
    const asked = requests(size, size);
    const rows = new Int32Array(LOOKUPS);
    // Each returns the sum of the rows it found (a local: a number kept across calls would be boxed on every add).
    const baseline = () => {
      let sum = 0;
      for (const ids of asked) for (let k = 0; k < ids.length; k++) sum += table.rowOf(ids[k]!);
      return sum;
    };
    const passes = () => {
      let sum = 0;
      for (const ids of asked) {
        table.rowsOf(ids, rows);
        for (let k = 0; k < ids.length; k++) sum += rows[k]!;
      }
      return sum;
    };
    const sums = new Set<number>();
    const perRequestUs = (run: () => number) => {
      const started = process.hrtime.bigint();
      sums.add(run());
      return Number(process.hrtime.bigint() - started) / 1e3 / REQUESTS;
    };
    perRequestUs(baseline);
    perRequestUs(passes);
    const one: number[] = [];
    const many: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      if (r % 2 === 0) {
        one.push(perRequestUs(baseline));
        many.push(perRequestUs(passes));
      } else {
        many.push(perRequestUs(passes));
        one.push(perRequestUs(baseline));
      }
    }
    if (sums.size !== 1) throw new Error(`rowsOf and rowOf disagree: sums of rows ${[...sums].join(', ')}`);
    const oneUs = quantile(one, 0.5);
    const manyUs = quantile(many, 0.5);
    console.log(
      `${size} ids: rowOf one by one ${round(oneUs, 1)} us per request of ${LOOKUPS}, rowsOf ${round(manyUs, 1)} us (${round(oneUs / manyUs, 2)}x)`,
    );
    figures[`rowof_us_per_request_${size}`] = round(oneUs, 2);
    figures[`rowsof_us_per_request_${size}`] = round(manyUs, 2);
    figures[`speedup_${size}`] = round(oneUs / manyUs, 3);
  }
  console.log(JSON.stringify(figures));
}

main();
