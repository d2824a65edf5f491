import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ItemVectors } from './item-vectors.js';
import { writeItemVectors } from './test-fixtures.js';

describe('ItemVectors', () => {
  it('loads a two-tower export as unit vectors by id; zero vectors count as none', async () => {
    const dir = writeItemVectors(
      ['a', 'b', 'z'],
      [
        [3, 4],
        [0, -2],
        [0, 0],
      ],
    );
    const vectors = await ItemVectors.load(dir);
    expect(vectors.dim).toBe(2);
    expect(vectors.size).toBe(2);
    expect([...vectors.get('a')!]).toEqual([expect.closeTo(0.6), expect.closeTo(0.8)]);
    expect([...vectors.get('b')!]).toEqual([0, -1]);
    expect(vectors.get('z')).toBeUndefined();
    expect(vectors.get('nope')).toBeUndefined();
  });

  it('refuses a missing manifest, a bad checksum, a wrong size or a wrong id count', async () => {
    await expect(ItemVectors.load(mkdtempSync(join(tmpdir(), 'recsys-empty-')))).rejects.toThrow(/cannot read .*manifest\.json/);
    await expect(ItemVectors.load(writeItemVectors(['a'], [[1, 2]], { sha256: '0'.repeat(64) }))).rejects.toThrow(
      'checksum differs from the manifest',
    );
    await expect(ItemVectors.load(writeItemVectors(['a'], [[1, 2]], { dim: 3 }))).rejects.toThrow('8 bytes, expected count × dim × 4 = 12');
    const ids = writeItemVectors(['a', 'b'], [[1, 2]], { count: 1 });
    await expect(ItemVectors.load(ids)).rejects.toThrow('2 ids, expected 1');
    await expect(ItemVectors.load(writeItemVectors(['a'], [[1]], { dtype: 'float16' }))).rejects.toThrow('itemVectors.dtype');
  });
});
