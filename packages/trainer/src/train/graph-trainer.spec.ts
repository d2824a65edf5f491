import { g } from '../graph/graph';
import { GraphTrainer, LAZY_TABLE_ROWS } from './graph-trainer';

/** loss = sum(gathered rows): every touched row gets gradient 1. */
async function trainer(rows: number, lazy?: boolean | 'auto') {
  const table = g.param('table', [rows, 2], new Float32Array(rows * 2));
  const ids = g.input('ids', ['B'], 'int32');
  const loss = g.reduceSum(g.gather(table, ids), [0, 1]);
  return { table, trainer: await GraphTrainer.create(loss, [table], { lr: 0.1, lazyEmbeddings: lazy, threads: 1 }) };
}

const feed = (...ids: number[]) => ({ ids: { data: Int32Array.from(ids), shape: [ids.length] } });

describe('GraphTrainer embedding updates', () => {
  it('is dense Adam for small tables: a row keeps moving on momentum after its gradient stops', async () => {
    const { table, trainer: t } = await trainer(10);
    expect(await t.train(feed(0))).toBe(0);
    const afterFirst = table.data![0]!;
    expect(afterFirst).toBeCloseTo(-0.1, 5);
    await t.train(feed(1));
    expect(table.data![0]!).toBeLessThan(afterFirst);
    // Row 1's first gradient arrives at global step 2: dense Adam bias-corrects with t = 2.
    expect(table.data![2]!).toBeCloseTo((-0.1 * (0.1 / (1 - 0.9 ** 2))) / Math.sqrt(0.001 / (1 - 0.999 ** 2)), 5);
    await t.release();
  });

  it('is lazy for tables above LAZY_TABLE_ROWS (and when asked): untouched rows stay put', async () => {
    for (const [rows, lazy] of [
      [LAZY_TABLE_ROWS + 1, undefined],
      [10, true],
    ] as const) {
      const { table, trainer: t } = await trainer(rows, lazy);
      await t.train(feed(0, 0));
      const afterFirst = table.data![0]!;
      expect(afterFirst).toBeCloseTo(-0.1, 5);
      await t.train(feed(1));
      expect(table.data![0]).toBe(afterFirst);
      // Row 1's first update is bias-corrected as a first step.
      expect(table.data![2]!).toBeCloseTo(-0.1, 5);
      await t.release();
    }
  });
});
