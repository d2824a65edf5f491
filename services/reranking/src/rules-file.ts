import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { RULE_TYPES, type RuleType } from './rules/rule.js';

/** A rules file that cannot be used; the message names the field (`rules[2].window: ...`). */
export class RulesFileError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'RulesFileError';
  }
}

/** An issue's message, prefixed with "required: " when the field is absent. */
const says = (text: string) => ({ error: (issue: { input?: unknown }) => (issue.input === undefined ? `required: ${text}` : text) });

const intAtLeast = (min: number, max = Number.MAX_SAFE_INTEGER) => {
  const text = max === Number.MAX_SAFE_INTEGER ? `must be an integer >= ${min}` : `must be an integer from ${min} to ${max}`;
  return z.number(says(text)).int(says(text)).min(min, says(text)).max(max, says(text));
};
const positive = z.number(says('must be a number > 0')).positive(says('must be a number > 0')).finite(says('must be a number > 0'));
const finite = z.number(says('must be a finite number')).finite(says('must be a finite number'));
const itemId = z
  .string(says('must be an item id (a string)'))
  .min(1, says('must not be empty'))
  .max(256, says('must be at most 256 characters'))
  .regex(/^[^\u0000-\u001f\u007f]*$/, says('must not contain control characters'));
const category = z.string(says('must be a category (a string)')).min(1, says('must not be empty'));
const ruleName = z
  .string(says('must be a name'))
  .regex(/^[a-z][a-z0-9_]{0,63}$/, says('must be lower-case letters, digits and _ (starting with a letter), at most 64'));

const EVENT_TYPE_NAMES = ['impression', 'view', 'click', 'add_to_cart', 'purchase', 'like', 'dislike'] as const;
export type EventTypeName = (typeof EVENT_TYPE_NAMES)[number];

const dropSeen = z
  .object({
    rule: z.literal('drop_seen'),
    name: ruleName.optional(),
    event_types: z
      .array(z.enum(EVENT_TYPE_NAMES, says(`must be one of ${EVENT_TYPE_NAMES.join(', ')}`)), says('must be a list of event types'))
      .min(1, says('must name at least one event type'))
      .default(['view', 'click', 'add_to_cart', 'purchase']),
    history_depth: intAtLeast(1, 10000).default(100),
    within_hours: positive.optional(),
    context_items: z.boolean(says('must be true or false')).default(true),
    on_failure: z.enum(['degrade', 'unavailable'], says('must be degrade or unavailable')).default('degrade'),
  })
  .strict();

const boostNew = z
  .object({
    rule: z.literal('boost_new'),
    name: ruleName.optional(),
    max_age_hours: positive,
    multiply: positive.default(1),
    add: finite.default(0),
    guarantee: z
      .object({ count: intAtLeast(1), within_top: intAtLeast(1) }, says('must be a mapping with count and within_top'))
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.guarantee && rule.guarantee.count > rule.guarantee.within_top) {
      ctx.addIssue({ code: 'custom', path: ['guarantee', 'count'], message: `must not exceed within_top (${rule.guarantee.within_top})` });
    }
    if (rule.multiply === 1 && rule.add === 0 && !rule.guarantee) {
      ctx.addIssue({ code: 'custom', path: [], message: 'does nothing: set multiply, add or guarantee' });
    }
  });

const categoryWindow = z
  .object({
    rule: z.literal('diversity'),
    name: ruleName.optional(),
    kind: z.literal('category_window'),
    window: intAtLeast(2, 1000),
    max_per_category: intAtLeast(1),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.max_per_category >= rule.window) {
      ctx.addIssue({
        code: 'custom',
        path: ['max_per_category'],
        message: `must be less than window (${rule.window}), or the rule does nothing`,
      });
    }
  });

const mmr = z
  .object({
    rule: z.literal('diversity'),
    name: ruleName.optional(),
    kind: z.literal('mmr'),
    lambda: z
      .number(says('must be a number from 0 to 1'))
      .min(0, says('must be a number from 0 to 1'))
      .max(1, says('must be a number from 0 to 1')),
    vectors: z.string(says('must be the path of a two-tower model version directory')).min(1, says('must not be empty')),
  })
  .strict();

const shuffle = z
  .object({
    rule: z.literal('shuffle'),
    name: ruleName.optional(),
    epsilon: positive,
    relative: z.boolean(says('must be true or false')).default(false),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.relative && rule.epsilon >= 1) ctx.addIssue({ code: 'custom', path: ['epsilon'], message: 'must be below 1 when relative' });
  });

const block = z
  .object({
    rule: z.literal('block'),
    name: ruleName.optional(),
    item_ids: z.array(itemId, says('must be a list of item ids')).default([]),
    categories: z.array(category, says('must be a list of categories')).default([]),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (rule.item_ids.length === 0 && rule.categories.length === 0) {
      ctx.addIssue({ code: 'custom', path: [], message: 'does nothing: list item_ids or categories' });
    }
  });

const pinEntry = z
  .object(
    {
      item_id: itemId,
      position: intAtLeast(1),
      insert: z.boolean(says('must be true or false')).default(false),
    },
    says('must be a mapping with item_id and position'),
  )
  .strict();

const pin = z
  .object({
    rule: z.literal('pin'),
    name: ruleName.optional(),
    pins: z.array(pinEntry, says('must be a list of pins')).min(1, says('must list at least one pin')),
  })
  .strict()
  .superRefine((rule, ctx) => {
    const positions = new Map<number, number>();
    const items = new Map<string, number>();
    rule.pins.forEach((p, j) => {
      if (positions.has(p.position)) {
        ctx.addIssue({
          code: 'custom',
          path: ['pins', j, 'position'],
          message: `position ${p.position} is already taken by pins[${positions.get(p.position)}]`,
        });
      }
      if (items.has(p.item_id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['pins', j, 'item_id'],
          message: `"${p.item_id}" is already pinned by pins[${items.get(p.item_id)}]`,
        });
      }
      positions.set(p.position, j);
      items.set(p.item_id, j);
    });
  });

type Named<T> = Omit<T, 'name'> & { name: string };
export type DropSeenConfig = Named<z.infer<typeof dropSeen>>;
export type BoostNewConfig = Named<z.infer<typeof boostNew>>;
export type CategoryWindowConfig = Named<z.infer<typeof categoryWindow>>;
export type MmrConfig = Named<z.infer<typeof mmr>>;
export type ShuffleConfig = Named<z.infer<typeof shuffle>>;
export type BlockConfig = Named<z.infer<typeof block>>;
export type PinConfig = Named<z.infer<typeof pin>>;
export type RuleConfig = DropSeenConfig | BoostNewConfig | CategoryWindowConfig | MmrConfig | ShuffleConfig | BlockConfig | PinConfig;

export interface RulesConfig {
  /** Where the rules came from: a file path, or "built-in defaults". */
  source: string;
  /** Relative paths in the rules (vectors) are resolved from here. */
  baseDir: string;
  rules: RuleConfig[];
}

type RuleSchema = z.ZodType<{ rule: string; name?: string | undefined }>;
const schemas: Record<Exclude<RuleType, 'diversity'>, RuleSchema> = { drop_seen: dropSeen, boost_new: boostNew, shuffle, block, pin };
const diversityKinds: Record<string, RuleSchema> = { category_window: categoryWindow, mmr };

const isMapping = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Validates a parsed rules document; the first problem is thrown as a RulesFileError naming the field. */
export function parseRules(document: unknown, source = 'rules', baseDir = process.cwd()): RulesConfig {
  if (!isMapping(document)) throw new RulesFileError('(file)', 'must be a mapping with a "rules" list');
  const unknown = Object.keys(document).filter((key) => key !== 'rules');
  if (unknown.length > 0) throw new RulesFileError(unknown[0]!, 'unknown field (the file holds only "rules")');
  if (!Array.isArray(document.rules)) throw new RulesFileError('rules', 'must be a list of rules');
  const rules: RuleConfig[] = [];
  const names = new Map<string, number>();
  document.rules.forEach((entry: unknown, i) => {
    const at = `rules[${i}]`;
    if (!isMapping(entry)) throw new RulesFileError(at, 'must be a mapping with a "rule" field');
    const type = entry.rule;
    if (typeof type !== 'string' || !(RULE_TYPES as readonly string[]).includes(type)) {
      throw new RulesFileError(
        `${at}.rule`,
        `${type === undefined ? 'required' : `unknown rule ${JSON.stringify(type)}`}: one of ${RULE_TYPES.join(', ')}`,
      );
    }
    let schema: RuleSchema;
    if (type === 'diversity') {
      const kind = entry.kind;
      const kindSchema = typeof kind === 'string' ? diversityKinds[kind] : undefined;
      if (!kindSchema) {
        throw new RulesFileError(
          `${at}.kind`,
          `${kind === undefined ? 'required' : `unknown kind ${JSON.stringify(kind)}`}: category_window or mmr`,
        );
      }
      schema = kindSchema;
    } else {
      schema = schemas[type as Exclude<RuleType, 'diversity'>];
    }
    const parsed = schema.safeParse(entry);
    if (!parsed.success) {
      // A misspelt field also leaves the real one missing: the unknown name says more.
      const issues = parsed.error.issues;
      throw issueError(at, issues.find((issue) => issue.code === 'unrecognized_keys') ?? issues[0]!, schema);
    }
    const name = parsed.data.name ?? type;
    const previous = names.get(name);
    if (previous !== undefined) {
      throw new RulesFileError(`${at}.name`, `"${name}" already names rules[${previous}]; give one of them a distinct name`);
    }
    names.set(name, i);
    rules.push({ ...parsed.data, name } as RuleConfig);
  });
  return { source, baseDir, rules };
}

/** Reads and validates a YAML (.yaml, .yml) or JSON (.json) rules file; errors name the file and the field. */
export function loadRulesFile(path: string): RulesConfig {
  const full = resolve(path);
  const extension = extname(full).toLowerCase();
  if (!['.yaml', '.yml', '.json'].includes(extension)) throw new RulesFileError(full, 'must end in .yaml, .yml or .json');
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (error) {
    throw new RulesFileError(full, `cannot be read (${(error as Error).message})`);
  }
  let document: unknown;
  try {
    document = extension === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new RulesFileError(full, `malformed ${extension === '.json' ? 'JSON' : 'YAML'}: ${(error as Error).message.split('\n')[0]}`);
  }
  try {
    return parseRules(document, full, dirname(full));
  } catch (error) {
    if (error instanceof RulesFileError) throw new RulesFileError(`${full}: ${error.field}`, error.problem);
    throw error;
  }
}

/**
 * The rules used when no file is given: drop what the user viewed, clicked, carted or bought (last
 * 100 events and the request's recent items), boost items younger than a week by 10% with at least
 * one in the top 10, shuffle scores within 1% of each other, and at most 2 of a category in any 5.
 */
export const DEFAULT_RULES_DOCUMENT = {
  rules: [
    { rule: 'drop_seen', event_types: ['view', 'click', 'add_to_cart', 'purchase'], history_depth: 100, context_items: true },
    { rule: 'boost_new', max_age_hours: 168, multiply: 1.1, guarantee: { count: 1, within_top: 10 } },
    { rule: 'shuffle', epsilon: 0.01, relative: true },
    { rule: 'diversity', kind: 'category_window', window: 5, max_per_category: 2 },
  ],
};

export function defaultRules(): RulesConfig {
  return parseRules(structuredClone(DEFAULT_RULES_DOCUMENT), 'built-in defaults');
}

/** `rules[2].window` from a zod path under a rule. */
function issueError(at: string, issue: z.core.$ZodIssue, schema: RuleSchema): RulesFileError {
  const path = issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('');
  if (issue.code === 'unrecognized_keys') {
    const known = knownFields(schema, issue.path);
    const hint = known.length > 0 ? `; known fields: ${known.join(', ')}` : '';
    return new RulesFileError(`${at}${path}.${issue.keys[0]}`, `unknown field${hint}`);
  }
  return new RulesFileError(`${at}${path}`, issue.message);
}

/** The field names of the object schema at a path (through optional, default, array and refinement wrappers). */
function knownFields(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node: unknown = schema;
  const unwrap = () => {
    for (;;) {
      if (node instanceof z.ZodOptional || node instanceof z.ZodDefault) node = node.unwrap();
      else if (node instanceof z.ZodPipe) node = node.in;
      else return;
    }
  };
  unwrap();
  for (const part of path) {
    if (typeof part === 'number' && node instanceof z.ZodArray) node = node.element;
    else if (typeof part === 'string' && node instanceof z.ZodObject) node = (node.shape as Record<string, unknown>)[part];
    else return [];
    unwrap();
  }
  return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}
