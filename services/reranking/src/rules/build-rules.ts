import type { RulesConfig } from '../rules-file.js';
import { definitionOf } from './registry.js';
import type { Rule } from './rule.js';

/** The rules of a validated config, in order, each made by its own definition's factory. */
export async function buildRules(config: RulesConfig): Promise<Rule[]> {
  const at = config.source === 'built-in defaults' ? '' : `${config.source}: `;
  const rules: Rule[] = [];
  for (const [i, rule] of config.rules.entries()) {
    const definition = definitionOf(rule);
    rules.push(await definition.create(rule as never, { baseDir: config.baseDir, field: (name) => `${at}rules[${i}].${name}` }));
  }
  return rules;
}
