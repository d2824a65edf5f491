import { blockRule } from './block.js';
import { boostNewRule } from './boost-new.js';
import { categoryWindowRule } from './category-window.js';
import type { RuleDefinition } from './definition.js';
import { dropSeenRule } from './drop-seen.js';
import { mmrRule } from './mmr.js';
import { pinRule } from './pin.js';
import { shuffleRule } from './shuffle.js';

/** Every rule a rules file can name; each file holds its rule's schema, factory and logic together. */
export const RULE_DEFINITIONS: readonly RuleDefinition[] = [
  dropSeenRule,
  boostNewRule,
  categoryWindowRule,
  mmrRule,
  shuffleRule,
  blockRule,
  pinRule,
] as unknown as readonly RuleDefinition[];

/** The definition a validated entry came from. */
export function definitionOf(entry: { rule: string; kind?: unknown }): RuleDefinition {
  const kinds = RULE_DEFINITIONS.filter((definition) => definition.type === entry.rule);
  const found = kinds.find((d) => d.kind === undefined) ?? kinds.find((d) => d.kind === entry.kind);
  if (!found) throw new TypeError(`no rule definition for ${JSON.stringify(entry)}`);
  return found;
}
