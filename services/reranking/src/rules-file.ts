import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { RulesFileError } from './rules-file-error.js';
import type { BlockConfig } from './rules/block.js';
import type { BoostNewConfig } from './rules/boost-new.js';
import type { CategoryWindowConfig } from './rules/category-window.js';
import type { RuleSchema } from './rules/definition.js';
import type { DropSeenConfig } from './rules/drop-seen.js';
import type { MmrConfig } from './rules/mmr.js';
import type { PinConfig } from './rules/pin.js';
import { RULE_DEFINITIONS } from './rules/registry.js';
import { RULE_TYPES } from './rules/rule.js';
import type { ShuffleConfig } from './rules/shuffle.js';

export { RulesFileError } from './rules-file-error.js';

/** A validated rules-file entry: its definition's fields, the name defaulted to the rule type. */
export type RuleConfig = (DropSeenConfig | BoostNewConfig | CategoryWindowConfig | MmrConfig | ShuffleConfig | BlockConfig | PinConfig) & {
  name: string;
};

export interface RulesConfig {
  /** Where the rules came from: a file path, or "built-in defaults". */
  source: string;
  /** Relative paths in the rules (vectors) are resolved from here. */
  baseDir: string;
  rules: RuleConfig[];
}

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
    const kinds = RULE_DEFINITIONS.filter((definition) => definition.type === type);
    let definition = kinds.find((d) => d.kind === undefined);
    if (definition === undefined) {
      const kind = entry.kind;
      definition = kinds.find((d) => d.kind === kind);
      if (!definition) {
        throw new RulesFileError(
          `${at}.kind`,
          `${kind === undefined ? 'required' : `unknown kind ${JSON.stringify(kind)}`}: ${kinds.map((d) => d.kind).join(' or ')}`,
        );
      }
    }
    const schema = definition.schema;
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
