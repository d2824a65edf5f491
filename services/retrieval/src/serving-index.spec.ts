import type { UserTower } from '@recsys/serving';
import type { IndexInfo, VectorStore } from '@recsys/vector-index';
import { ServingIndexHolder, type ServingIndex } from './serving-index.js';

/** A stand-in pair that records when it is closed: the holder's lifecycle logic is what is tested here. */
function recordingPair(version: string, closed: string[]): ServingIndex {
  const info: IndexInfo = { version, backend: 'embedded', size: 0, dimension: 2, metric: 'ip', modelVersion: '1' };
  const store = {
    info: () => info,
    search: () => Promise.resolve([]),
    searchBatch: () => Promise.resolve([]),
    getVectors: () => Promise.resolve([]),
    payloads: () => Promise.resolve([]),
    close: () => {
      closed.push(`store ${version}`);
      return Promise.resolve();
    },
  } satisfies VectorStore;
  const tower = {
    release: () => {
      closed.push(`tower ${version}`);
      return Promise.resolve();
    },
  } as unknown as UserTower;
  return { store, tower, info };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ServingIndexHolder', () => {
  it('closes a swapped-out pair only after its last lease is released, once', async () => {
    const closed: string[] = [];
    const holder = new ServingIndexHolder(recordingPair('1', closed));
    const first = holder.acquire();
    const second = holder.acquire();
    holder.swap(recordingPair('2', closed));
    expect(holder.current.info.version).toBe('2');
    expect(first.index.info.version).toBe('1');
    first.release();
    first.release();
    await tick();
    expect(closed).toEqual([]);
    second.release();
    await tick();
    expect(closed.sort()).toEqual(['store 1', 'tower 1']);
    // A lease taken after the swap is on the new pair.
    const third = holder.acquire();
    expect(third.index.info.version).toBe('2');
    third.release();
    await holder.close();
    expect(closed.sort()).toEqual(['store 1', 'store 2', 'tower 1', 'tower 2']);
  });

  it('closes an idle pair at once on swap, and refuses leases once closed', async () => {
    const closed: string[] = [];
    const holder = new ServingIndexHolder(recordingPair('1', closed));
    await holder.use(() => Promise.resolve());
    holder.swap(recordingPair('2', closed));
    await tick();
    expect(closed.sort()).toEqual(['store 1', 'tower 1']);
    await holder.close();
    expect(() => holder.acquire()).toThrow('the serving index is closed');
    expect(() => holder.swap(recordingPair('3', closed))).toThrow('the serving index is closed');
  });

  it('keeps a pair open while a use() is running, even across a swap', async () => {
    const closed: string[] = [];
    const holder = new ServingIndexHolder(recordingPair('1', closed));
    let finish!: () => void;
    const running = holder.use((index) => new Promise<string>((resolve) => (finish = () => resolve(index.info.version))));
    holder.swap(recordingPair('2', closed));
    await tick();
    expect(closed).toEqual([]);
    finish();
    expect(await running).toBe('1');
    await tick();
    expect(closed.sort()).toEqual(['store 1', 'tower 1']);
  });
});
