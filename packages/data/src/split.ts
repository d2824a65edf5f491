import { protocolIsTrain } from './hash.js';
import { type Interactions } from './types.js';

/** Per interaction 1 = train, 0 = test, by protocolIsTrain over (userKey(row), itemKey(row)). */
export function hashSplit(interactions: Interactions, userKey: (row: number) => number, itemKey: (row: number) => number): Uint8Array {
  const split = new Uint8Array(interactions.length);
  for (let r = 0; r < interactions.length; r++) {
    split[r] = protocolIsTrain(userKey(interactions.user[r]!), itemKey(interactions.item[r]!)) ? 1 : 0;
  }
  return split;
}

/** The latest `testFraction` of interactions by timestamp are test (ties broken by position: later rows first). */
export function timeSplit(interactions: Interactions, testFraction: number): Uint8Array {
  if (!(testFraction >= 0 && testFraction <= 1)) throw new Error(`testFraction must be in [0, 1], got ${testFraction}`);
  const n = interactions.length;
  const split = new Uint8Array(n).fill(1);
  const tests = Math.round(n * testFraction);
  if (tests === 0) return split;
  const sorted = Float64Array.from(interactions.timestamp).sort();
  const cutoff = sorted[n - tests]!;
  let remaining = tests;
  for (let r = 0; r < n; r++) {
    if (interactions.timestamp[r]! > cutoff) {
      split[r] = 0;
      remaining--;
    }
  }
  // Ties at the cutoff: the last rows in log order go to test.
  for (let r = n - 1; r >= 0 && remaining > 0; r--) {
    if (interactions.timestamp[r] === cutoff) {
      split[r] = 0;
      remaining--;
    }
  }
  return split;
}

/** How many train rows (of any value) each user and each item has. */
export function trainCounts(
  interactions: Interactions,
  split: Uint8Array,
  users: number,
  items: number,
): { user: Float64Array; item: Float64Array } {
  const user = new Float64Array(users);
  const item = new Float64Array(items);
  for (let r = 0; r < interactions.length; r++) {
    if (split[r] !== 1) continue;
    user[interactions.user[r]!]++;
    item[interactions.item[r]!]++;
  }
  return { user, item };
}
