/**
 * Command-line and script settings, checked one way for every CLI (recsys, recsys-up, recsys-index, the loaders, the
 * simulator) and bench script: a value a rule refuses stops the command with a message naming the flag or variable.
 */

/** A command line a CLI refuses; its message names the flag. CLIs print it with their usage and exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** count: a whole number >= 1; whole: >= 0; positive: a finite number > 0; non-negative: a finite number >= 0. */
export type NumberRule = 'count' | 'whole' | 'positive' | 'non-negative';

const INTEGER = /^\s*\d+\s*$/;

/** What the rule asks for, as a message says it: "a whole number >= 1", "a whole number from 1 to 100000". */
export function numberWanted(rule: NumberRule, max?: number): string {
  switch (rule) {
    case 'count':
      return max === undefined ? 'a whole number >= 1' : `a whole number from 1 to ${max}`;
    case 'whole':
      return max === undefined ? 'a whole number >= 0' : `a whole number from 0 to ${max}`;
    case 'positive':
      return max === undefined ? 'a number > 0' : `a number > 0 and <= ${max}`;
    case 'non-negative':
      return max === undefined ? 'a number >= 0' : `a number from 0 to ${max}`;
  }
}

/** The number `text` holds when the rule (and max) accepts it, else undefined. */
export function numberByRule(text: string, rule: NumberRule, max?: number): number | undefined {
  const integer = rule === 'count' || rule === 'whole';
  if (integer ? !INTEGER.test(text) : text.trim() === '') return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) return undefined;
  if (rule === 'count' ? value < 1 : rule === 'positive' ? value <= 0 : value < 0) return undefined;
  if (max !== undefined && value > max) return undefined;
  return value;
}

/** A numeric flag's value, undefined when the flag is absent; a value the rule refuses is a UsageError naming --flag. */
export function numberFlag(flag: string, text: string | undefined, rule: NumberRule, max?: number): number | undefined {
  if (text === undefined) return undefined;
  const value = numberByRule(text, rule, max);
  if (value === undefined) throw new UsageError(`--${flag}: expected ${numberWanted(rule, max)}, got "${text}"`);
  return value;
}
