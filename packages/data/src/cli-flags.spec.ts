import { numberByRule, numberFlag, UsageError } from './cli-flags.js';

describe('numberFlag', () => {
  it('reads a value the rule accepts and leaves an absent flag undefined', () => {
    expect(numberFlag('k', undefined, 'count')).toBeUndefined();
    expect(numberFlag('k', '10', 'count')).toBe(10);
    expect(numberFlag('seed', '0', 'whole')).toBe(0);
    expect(numberFlag('lr', '0.005', 'positive')).toBe(0.005);
    expect(numberFlag('tolerance', '0', 'non-negative')).toBe(0);
    expect(numberFlag('batch', '100000', 'count', 100_000)).toBe(100_000);
  });

  it.each([
    ['count', '0', undefined, 'a whole number >= 1'],
    ['count', 'ten', undefined, 'a whole number >= 1'],
    ['count', '2.5', undefined, 'a whole number >= 1'],
    ['count', '0x10', undefined, 'a whole number >= 1'],
    ['count', '', undefined, 'a whole number >= 1'],
    ['count', '100001', 100_000, 'a whole number from 1 to 100000'],
    ['whole', '-1', undefined, 'a whole number >= 0'],
    ['whole', '1e3', undefined, 'a whole number >= 0'],
    ['positive', '0', undefined, 'a number > 0'],
    ['positive', 'Infinity', undefined, 'a number > 0'],
    ['positive', ' ', undefined, 'a number > 0'],
    ['non-negative', '-0.5', undefined, 'a number >= 0'],
    ['non-negative', 'NaN', undefined, 'a number >= 0'],
  ] as const)('refuses %s "%s" (max %s) by flag name', (rule, text, max, wanted) => {
    expect(() => numberFlag('x', text, rule, max)).toThrow(new UsageError(`--x: expected ${wanted}, got "${text}"`));
    expect(numberByRule(text, rule, max)).toBeUndefined();
  });
});
