import { resolve } from 'node:path';
import { common } from '@recsys/contracts';
import { ItemVectors } from '../item-vectors.js';
import { RulesFileError, type RuleConfig, type RulesConfig } from '../rules-file.js';
import { BlockRule } from './block.js';
import { BoostNewRule } from './boost-new.js';
import { CategoryWindowRule } from './category-window.js';
import { DropSeenRule } from './drop-seen.js';
import { MmrRule } from './mmr.js';
import { PinRule } from './pin.js';
import type { Rule } from './rule.js';
import { ShuffleRule } from './shuffle.js';

const HOUR_MS = 3600_000;

/** The rules of a validated config, in order; MMR vectors are loaded here (a failure names the rule's field). */
export async function buildRules(config: RulesConfig): Promise<Rule[]> {
  const rules: Rule[] = [];
  for (const [i, rule] of config.rules.entries()) rules.push(await buildRule(rule, config, i));
  return rules;
}

async function buildRule(rule: RuleConfig, config: RulesConfig, index: number): Promise<Rule> {
  const name = rule.name;
  switch (rule.rule) {
    case 'drop_seen':
      return new DropSeenRule({
        name,
        eventTypes: new Set(rule.event_types.map(eventTypeOf)),
        historyDepth: rule.history_depth,
        withinMs: rule.within_hours === undefined ? undefined : rule.within_hours * HOUR_MS,
        contextItems: rule.context_items,
        onFailure: rule.on_failure,
      });
    case 'boost_new':
      return new BoostNewRule({
        name,
        maxAgeMs: rule.max_age_hours * HOUR_MS,
        multiply: rule.multiply,
        add: rule.add,
        guarantee: rule.guarantee && { count: rule.guarantee.count, withinTop: rule.guarantee.within_top },
      });
    case 'diversity':
      if (rule.kind === 'category_window')
        return new CategoryWindowRule({ name, window: rule.window, maxPerCategory: rule.max_per_category });
      try {
        return new MmrRule({ name, lambda: rule.lambda, vectors: await ItemVectors.load(resolve(config.baseDir, rule.vectors)) });
      } catch (error) {
        const at = config.source === 'built-in defaults' ? '' : `${config.source}: `;
        throw new RulesFileError(`${at}rules[${index}].vectors`, (error as Error).message);
      }
    case 'shuffle':
      return new ShuffleRule({ name, epsilon: rule.epsilon, relative: rule.relative });
    case 'block':
      return new BlockRule({ name, itemIds: new Set(rule.item_ids), categories: new Set(rule.categories) });
    case 'pin':
      return new PinRule({ name, pins: rule.pins.map((p) => ({ itemId: p.item_id, position: p.position, insert: p.insert })) });
  }
}

function eventTypeOf(name: string): common.EventType {
  return (common.EventType as unknown as Record<string, common.EventType>)[name.toUpperCase()]!;
}
