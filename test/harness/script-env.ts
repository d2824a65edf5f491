/**
 * The one reader of numeric settings for bench and test scripts (BENCH_*, RESILIENCE_*, ...): a value that is set must
 * be a number the rule accepts, or the script stops naming the variable, never running on a silent NaN.
 */
export type NumberRule = 'count' | 'whole' | 'positive' | 'non-negative';

const RULES: Record<NumberRule, { accepts: (value: number) => boolean; wanted: string }> = {
  count: { accepts: (v) => Number.isInteger(v) && v >= 1, wanted: 'a whole number >= 1' },
  whole: { accepts: (v) => Number.isInteger(v) && v >= 0, wanted: 'a whole number >= 0' },
  positive: { accepts: (v) => Number.isFinite(v) && v > 0, wanted: 'a number > 0' },
  'non-negative': { accepts: (v) => Number.isFinite(v) && v >= 0, wanted: 'a number >= 0' },
};

export function envNumber(name: string, fallback: number, rule: NumberRule = 'count', env: NodeJS.ProcessEnv = process.env): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  const { accepts, wanted } = RULES[rule];
  if (!accepts(value)) throw new Error(`${name} must be ${wanted}, got "${text}"`);
  return value;
}
