import { z } from 'zod';
import type { Rule, RuleType } from './rule.js';

// What every rule's file declares beside its logic: the schema of its entry in the rules file and the factory
// that turns a validated entry into the rule. rules-file.ts and build-rules.ts only look definitions up.

/** An issue's message, prefixed with "required: " when the field is absent. */
export const says = (text: string) => ({ error: (issue: { input?: unknown }) => (issue.input === undefined ? `required: ${text}` : text) });

export const intAtLeast = (min: number, max = Number.MAX_SAFE_INTEGER) => {
  const text = max === Number.MAX_SAFE_INTEGER ? `must be an integer >= ${min}` : `must be an integer from ${min} to ${max}`;
  return z.number(says(text)).int(says(text)).min(min, says(text)).max(max, says(text));
};
export const positive = z.number(says('must be a number > 0')).positive(says('must be a number > 0')).finite(says('must be a number > 0'));
export const finite = z.number(says('must be a finite number')).finite(says('must be a finite number'));
export const itemId = z
  .string(says('must be an item id (a string)'))
  .min(1, says('must not be empty'))
  .max(256, says('must be at most 256 characters'))
  .regex(/^[^\u0000-\u001f\u007f]*$/, says('must not contain control characters'));
export const category = z.string(says('must be a category (a string)')).min(1, says('must not be empty'));
export const ruleName = z
  .string(says('must be a name'))
  .regex(/^[a-z][a-z0-9_]{0,63}$/, says('must be lower-case letters, digits and _ (starting with a letter), at most 64'));
export const HOUR_MS = 3600_000;

/** A rules-file entry once validated: its fields, with the name defaulted to the rule type. */
export type Named<T> = Omit<T, 'name'> & { name: string };

/** What a factory may need beyond the entry: where relative paths start, and how to name a field in an error. */
export interface BuildContext {
  baseDir: string;
  /** The entry's field as an error names it (`rules.yaml: rules[2].vectors`). */
  field(name: string): string;
}

export type RuleSchema = z.ZodType<{ rule: string; name?: string | undefined }>;

/** One rule kind: its `rule` (and, for diversity, `kind`) in the file, the entry's schema, and its factory. */
export interface RuleDefinition<S extends RuleSchema = RuleSchema> {
  readonly type: RuleType;
  /** The `kind` a diversity entry names; undefined for the other rules. */
  readonly kind?: string;
  readonly schema: S;
  create(config: Named<z.infer<S>>, context: BuildContext): Rule | Promise<Rule>;
}

/** A definition with its entry's type checked against its own schema. */
export const defineRule = <S extends RuleSchema>(definition: RuleDefinition<S>): RuleDefinition<S> => definition;
