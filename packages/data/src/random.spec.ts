import { AliasTable } from './alias-table.js';
import { Random } from './random.js';

describe('Random', () => {
  it('is deterministic by seed and differs between seeds', () => {
    const draw = (seed: number) => {
      const random = new Random(seed);
      return Array.from({ length: 8 }, () => random.uint32());
    };
    const a = new Random(42);
    const b = new Random(42);
    const c = new Random(43);
    const xs = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(xs);
    expect(draw(0)).not.toEqual(draw(1));
  });

  it('draws next in [0, 1), int in [0, n) and roughly uniform', () => {
    const random = new Random(1);
    const buckets = new Array<number>(10).fill(0);
    let outside = 0;
    for (let k = 0; k < 100_000; k++) {
      const x = random.next();
      if (!(x >= 0 && x < 1)) outside++;
      buckets[random.int(10)]!++;
    }
    expect(outside).toBe(0);
    for (const count of buckets) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });

  it('draws standard normals', () => {
    const random = new Random(2);
    let sum = 0;
    let squares = 0;
    const n = 100_000;
    for (let k = 0; k < n; k++) {
      const x = random.normal();
      sum += x;
      squares += x * x;
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.02);
    expect(Math.abs(squares / n - 1)).toBeLessThan(0.03);
  });

  it('shuffles in place and makes permutations', () => {
    const random = new Random(3);
    const array = Array.from({ length: 50 }, (_, k) => k);
    const same = random.shuffle(array);
    expect(same).toBe(array);
    expect([...array].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, k) => k));
    expect(array).not.toEqual(Array.from({ length: 50 }, (_, k) => k));
    const permutation = random.permutation(1000);
    expect(permutation).toBeInstanceOf(Int32Array);
    expect(Array.from(permutation).sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, k) => k));
    expect(new Random(9).permutation(20)).toEqual(new Random(9).permutation(20));
  });
});

describe('AliasTable', () => {
  it('draws indices in proportion to their weights', () => {
    const table = new AliasTable([1, 0, 3, 6]);
    const random = new Random(4);
    const counts = [0, 0, 0, 0];
    for (let k = 0; k < 100_000; k++) counts[table.sample(random)]!++;
    expect(counts[1]).toBe(0);
    expect(counts[0]! / 100_000).toBeCloseTo(0.1, 1);
    expect(counts[2]! / 100_000).toBeCloseTo(0.3, 1);
    expect(counts[3]! / 100_000).toBeCloseTo(0.6, 1);
  });

  it('refuses bad weights', () => {
    expect(() => new AliasTable([])).toThrow('no weights');
    expect(() => new AliasTable([0, 0])).toThrow('sum to 0');
    expect(() => new AliasTable([1, -1])).toThrow('weight 1');
  });
});
