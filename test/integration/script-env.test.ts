import { envNumber, envNumberList } from '../harness/script-env';

describe('envNumber (bench and test script settings)', () => {
  it('returns the fallback when the variable is unset or blank, and the value when it is set', () => {
    expect(envNumber('BENCH_X', 7, 'count', {})).toBe(7);
    expect(envNumber('BENCH_X', 7, 'count', { BENCH_X: ' ' })).toBe(7);
    expect(envNumber('BENCH_X', 7, 'count', { BENCH_X: '12' })).toBe(12);
    expect(envNumber('BENCH_X', 1, 'positive', { BENCH_X: '0.25' })).toBe(0.25);
    expect(envNumber('BENCH_X', 1, 'whole', { BENCH_X: '0' })).toBe(0);
    expect(envNumber('BENCH_X', 1, 'non-negative', { BENCH_X: '0.5' })).toBe(0.5);
  });

  it.each([
    ['count', '0', 'a whole number >= 1'],
    ['count', '2.5', 'a whole number >= 1'],
    ['count', 'many', 'a whole number >= 1'],
    ['whole', '-1', 'a whole number >= 0'],
    ['positive', '0', 'a number > 0'],
    ['positive', 'Infinity', 'a number > 0'],
    ['non-negative', '-0.1', 'a number >= 0'],
    ['non-negative', 'NaN', 'a number >= 0'],
  ] as const)('refuses %s "%s", naming the variable', (rule, text, wanted) => {
    expect(() => envNumber('BENCH_X', 1, rule, { BENCH_X: text })).toThrow(`BENCH_X must be ${wanted}, got "${text}"`);
  });

  it('reads a list of numbers, refusing the whole list for one bad value', () => {
    expect(envNumberList('OVERLOAD_MULTIPLES', 'positive', {})).toBeUndefined();
    expect(envNumberList('OVERLOAD_MULTIPLES', 'positive', { OVERLOAD_MULTIPLES: '0.5, 2,3' })).toEqual([0.5, 2, 3]);
    expect(() => envNumberList('OVERLOAD_MULTIPLES', 'positive', { OVERLOAD_MULTIPLES: '2,,3' })).toThrow(
      'OVERLOAD_MULTIPLES must be a comma-separated list, each a number > 0, got "2,,3"',
    );
  });
});
