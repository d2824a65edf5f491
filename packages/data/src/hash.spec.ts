import { hashBucket, protocolBucket, protocolIsTrain } from './hash.js';
import { Random } from './random.js';

function fnv1aReference(value: string): number {
  let h = 0x811c9dc5n;
  for (const byte of Buffer.from(value, 'utf8')) h = ((h ^ BigInt(byte)) * 0x01000193n) % 2n ** 32n;
  return Number(h);
}

function protocolReference(user: number, item: number): number {
  return Number(((BigInt(user) * 2654435761n + BigInt(item) * 40503n) % 2n ** 32n) % 10n);
}

describe('hashBucket', () => {
  it('is FNV-1a over UTF-8 bytes', () => {
    expect(hashBucket('', 2 ** 32)).toBe(0x811c9dc5);
    expect(hashBucket('a', 2 ** 32)).toBe(0xe40c292c);
    expect(hashBucket('foobar', 2 ** 32)).toBe(0xbf9cf968);
    for (const value of ['user-1', 'é', 'naïve café', '日本語', '😀 emoji', 'lone \ud800 surrogate']) {
      expect(hashBucket(value, 2 ** 32)).toBe(fnv1aReference(value));
      expect(hashBucket(value, 1000)).toBe(fnv1aReference(value) % 1000);
    }
  });

  it('stays in range', () => {
    for (let k = 0; k < 1000; k++) {
      const bucket = hashBucket(`v${k}`, 7);
      expect(bucket >= 0 && bucket < 7 && Number.isInteger(bucket)).toBe(true);
    }
  });
});

describe('protocolIsTrain', () => {
  it('matches the BigInt computation of the protocol split', () => {
    const mismatches: string[] = [];
    const check = (u: number, i: number) => {
      const expected = protocolReference(u, i);
      if (protocolBucket(u, i) !== expected || protocolIsTrain(u, i) !== expected < 8) mismatches.push(`${u},${i}`);
    };
    for (let u = 0; u <= 943; u += 3) for (let i = 0; i <= 1682; i += 5) check(u, i);
    const random = new Random(5);
    for (let k = 0; k < 10_000; k++) check(random.uint32(), random.uint32());
    for (const u of [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]) for (const i of [0, 1, 2 ** 31, 2 ** 32 - 1]) check(u, i);
    expect(mismatches).toEqual([]);
  });

  it('puts about 80% in train', () => {
    let train = 0;
    for (let u = 1; u <= 300; u++) for (let i = 1; i <= 300; i++) if (protocolIsTrain(u, i)) train++;
    expect(train / 90_000).toBeCloseTo(0.8, 2);
  });
});
