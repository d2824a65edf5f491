import { createHash, type Hash } from 'node:crypto';
import { type TrainingSetup } from './types.js';

function updateIds(hash: Hash, ids: readonly string[]): void {
  // Length-prefixed, so that no two id lists hash alike.
  hash.update(`${ids.length}\n${ids.map((id) => `${id.length}:${id}`).join('')}`);
}

function updateArray(hash: Hash, array: ArrayBufferView): void {
  hash.update(`${array.byteLength}\n`);
  hash.update(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
}

/** sha256 (hex) over the ids, the interaction arrays and the split: the same data and split, the same fingerprint. */
export function fingerprint(setup: TrainingSetup): string {
  const { users, items, interactions } = setup.dataset;
  const hash = createHash('sha256');
  updateIds(hash, users.ids);
  updateIds(hash, items.ids);
  updateArray(hash, interactions.user);
  updateArray(hash, interactions.item);
  updateArray(hash, interactions.value);
  updateArray(hash, interactions.timestamp);
  updateArray(hash, setup.split);
  return hash.digest('hex');
}
