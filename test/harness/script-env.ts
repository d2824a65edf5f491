import { numberByRule, numberWanted, type NumberRule } from '@recsys/data';

/**
 * The one reader of numeric settings for bench and test scripts (BENCH_*, RESILIENCE_*, ...), by the rules the CLIs'
 * flags use: a value that is set must be a number the rule accepts, or the script stops naming the variable, never
 * running on a silent NaN.
 */
export function envNumber(name: string, fallback: number, rule: NumberRule = 'count', env: NodeJS.ProcessEnv = process.env): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const value = numberByRule(text, rule);
  if (value === undefined) throw new Error(`${name} must be ${numberWanted(rule)}, got "${text}"`);
  return value;
}

/** A comma-separated list of numbers the rule accepts (e.g. OVERLOAD_MULTIPLES=2,3), or undefined when unset. */
export function envNumberList(name: string, rule: NumberRule, env: NodeJS.ProcessEnv = process.env): number[] | undefined {
  const text = env[name];
  if (text === undefined || text.trim() === '') return undefined;
  return text.split(',').map((part) => {
    const value = numberByRule(part, rule);
    if (value === undefined) throw new Error(`${name} must be a comma-separated list, each ${numberWanted(rule)}, got "${text}"`);
    return value;
  });
}
