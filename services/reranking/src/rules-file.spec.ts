import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildRules } from './rules/build-rules.js';
import { defaultRules, loadRulesFile, parseRules, RulesFileError } from './rules-file.js';
import { writeItemVectors } from './test-fixtures.js';

const problem = (rules: unknown[]) => {
  try {
    parseRules({ rules });
  } catch (error) {
    if (error instanceof RulesFileError) return error.message;
    throw error;
  }
  throw new Error('the rules were accepted');
};

const file = (name: string, text: string) => {
  const path = join(mkdtempSync(join(tmpdir(), 'recsys-rules-')), name);
  writeFileSync(path, text);
  return path;
};

describe('rules file', () => {
  it('parses every rule with its defaults, names defaulting to the rule', () => {
    const config = parseRules({
      rules: [
        { rule: 'drop_seen' },
        { rule: 'boost_new', max_age_hours: 24, add: 0.1 },
        { rule: 'diversity', kind: 'category_window', window: 4, max_per_category: 1 },
        { rule: 'diversity', name: 'mmr', kind: 'mmr', lambda: 0.5, vectors: 'v' },
        { rule: 'shuffle', epsilon: 0.001 },
        { rule: 'block', categories: ['adult'] },
        { rule: 'pin', pins: [{ item_id: 'p', position: 2 }] },
      ],
    });
    expect(config.rules.map((r) => r.name)).toEqual(['drop_seen', 'boost_new', 'diversity', 'mmr', 'shuffle', 'block', 'pin']);
    expect(config.rules[0]).toEqual({
      rule: 'drop_seen',
      name: 'drop_seen',
      event_types: ['view', 'click', 'add_to_cart', 'purchase'],
      history_depth: 100,
      context_items: true,
      on_failure: 'degrade',
    });
    expect(config.rules[1]).toMatchObject({ multiply: 1, add: 0.1 });
    expect(config.rules[4]).toMatchObject({ relative: false });
    expect(config.rules[5]).toMatchObject({ item_ids: [], categories: ['adult'] });
    expect(config.rules[6]).toMatchObject({ pins: [{ item_id: 'p', position: 2, insert: false }] });
  });

  it('names the rule and field of each problem', () => {
    const window = { rule: 'diversity', kind: 'category_window', window: 5, max_per_category: 2 };
    expect(problem([{ rule: 'drop_seen' }, { rule: 'shuffle', epsilon: 0.1 }, { ...window, window: 0 }])).toBe(
      'rules[2].window: must be an integer from 2 to 1000',
    );
    expect(problem([{ ...window, window: 2.5 }])).toBe('rules[0].window: must be an integer from 2 to 1000');
    expect(problem([{ ...window, window: '5' }])).toBe('rules[0].window: must be an integer from 2 to 1000');
    expect(problem([{ rule: 'diversity', kind: 'category_window', max_per_category: 2 }])).toBe(
      'rules[0].window: required: must be an integer from 2 to 1000',
    );
    expect(problem([{ ...window, max_per_category: 5 }])).toBe(
      'rules[0].max_per_category: must be less than window (5), or the rule does nothing',
    );
    expect(problem([{ ...window, windw: 3 }])).toBe(
      'rules[0].windw: unknown field; known fields: rule, name, kind, window, max_per_category',
    );
    expect(problem([{ rule: 'diversity', window: 3 }])).toBe('rules[0].kind: required: category_window or mmr');
    expect(problem([{ rule: 'diversity', kind: 'random' }])).toBe('rules[0].kind: unknown kind "random": category_window or mmr');
    expect(problem([{ rule: 'diversity', kind: 'mmr', lambda: 1.5, vectors: 'v' }])).toBe('rules[0].lambda: must be a number from 0 to 1');
    expect(problem([{ rule: 'diversity', kind: 'mmr', lambda: 0.5 }])).toBe(
      'rules[0].vectors: required: must be the path of a two-tower model version directory',
    );
    expect(problem([{ rule: 'sort' }])).toBe(
      'rules[0].rule: unknown rule "sort": one of drop_seen, boost_new, diversity, shuffle, block, pin',
    );
    expect(problem([{ window: 3 }])).toContain('rules[0].rule: required: one of drop_seen');
    expect(problem(['drop_seen'])).toBe('rules[0]: must be a mapping with a "rule" field');
    expect(problem([{ rule: 'drop_seen', event_types: ['view', 'stare'] }])).toBe(
      'rules[0].event_types[1]: must be one of impression, view, click, add_to_cart, purchase, like, dislike',
    );
    expect(problem([{ rule: 'drop_seen', event_types: [] }])).toBe('rules[0].event_types: must name at least one event type');
    expect(problem([{ rule: 'drop_seen', history_depth: 20000 }])).toBe('rules[0].history_depth: must be an integer from 1 to 10000');
    expect(problem([{ rule: 'drop_seen', on_failure: 'panic' }])).toBe('rules[0].on_failure: must be degrade or unavailable');
    expect(problem([{ rule: 'boost_new', max_age_hours: -1, multiply: 2 }])).toBe('rules[0].max_age_hours: must be a number > 0');
    expect(problem([{ rule: 'boost_new', max_age_hours: 1 }])).toBe('rules[0]: does nothing: set multiply, add or guarantee');
    expect(problem([{ rule: 'boost_new', max_age_hours: 1, guarantee: { count: 3, within_top: 2 } }])).toBe(
      'rules[0].guarantee.count: must not exceed within_top (2)',
    );
    expect(problem([{ rule: 'boost_new', max_age_hours: 1, guarantee: { count: 1, top: 2 } }])).toBe(
      'rules[0].guarantee.top: unknown field; known fields: count, within_top',
    );
    expect(problem([{ rule: 'shuffle', epsilon: 1.5, relative: true }])).toBe('rules[0].epsilon: must be below 1 when relative');
    expect(problem([{ rule: 'shuffle', epsilon: 0 }])).toBe('rules[0].epsilon: must be a number > 0');
    expect(problem([{ rule: 'block' }])).toBe('rules[0]: does nothing: list item_ids or categories');
    expect(problem([{ rule: 'block', item_ids: ['ok', ''] }])).toBe('rules[0].item_ids[1]: must not be empty');
    expect(problem([{ rule: 'pin', pins: [] }])).toBe('rules[0].pins: must list at least one pin');
    expect(problem([{ rule: 'pin', pins: [{ item_id: 'a', position: 0 }] }])).toBe('rules[0].pins[0].position: must be an integer >= 1');
    expect(
      problem([
        {
          rule: 'pin',
          pins: [
            { item_id: 'a', position: 1 },
            { item_id: 'b', position: 1 },
          ],
        },
      ]),
    ).toBe('rules[0].pins[1].position: position 1 is already taken by pins[0]');
    expect(
      problem([
        {
          rule: 'pin',
          pins: [
            { item_id: 'a', position: 1 },
            { item_id: 'a', position: 2 },
          ],
        },
      ]),
    ).toBe('rules[0].pins[1].item_id: "a" is already pinned by pins[0]');
    expect(
      problem([
        { rule: 'shuffle', epsilon: 0.1 },
        { rule: 'shuffle', epsilon: 0.2 },
      ]),
    ).toBe('rules[1].name: "shuffle" already names rules[0]; give one of them a distinct name');
    expect(problem([{ rule: 'shuffle', name: 'Bad Name', epsilon: 0.1 }])).toContain('rules[0].name: must be lower-case');
  });

  it('refuses a document that is not a mapping of rules', () => {
    expect(() => parseRules([])).toThrow('(file): must be a mapping with a "rules" list');
    expect(() => parseRules({ rules: {} })).toThrow('rules: must be a list of rules');
    expect(() => parseRules({ rules: [], extra: 1 })).toThrow('extra: unknown field (the file holds only "rules")');
    expect(parseRules({ rules: [] }).rules).toEqual([]);
  });

  it('reads YAML and JSON files, naming the file in every error', () => {
    const yaml = file('rules.yaml', 'rules:\n  - rule: shuffle\n    epsilon: 0.01\n');
    expect(loadRulesFile(yaml)).toMatchObject({ source: yaml, rules: [{ rule: 'shuffle', epsilon: 0.01 }] });
    const json = file('rules.json', JSON.stringify({ rules: [{ rule: 'block', item_ids: ['x'] }] }));
    expect(loadRulesFile(json).rules).toEqual([{ rule: 'block', name: 'block', item_ids: ['x'], categories: [] }]);
    const bad = file('bad.yaml', 'rules:\n  - rule: diversity\n    kind: category_window\n    window: 0\n    max_per_category: 1\n');
    expect(() => loadRulesFile(bad)).toThrow(`${bad}: rules[0].window: must be an integer from 2 to 1000`);
    expect(() => loadRulesFile(file('broken.yaml', 'rules: [\n'))).toThrow(/broken\.yaml: malformed YAML: /);
    expect(() => loadRulesFile(file('broken.json', '{"rules":'))).toThrow(/broken\.json: malformed JSON: /);
    expect(() => loadRulesFile(file('rules.txt', ''))).toThrow(/rules\.txt: must end in \.yaml, \.yml or \.json/);
    expect(() => loadRulesFile('/nonexistent/rules.yaml')).toThrow('/nonexistent/rules.yaml: cannot be read');
  });

  it('has valid built-in defaults and a valid example file', async () => {
    const defaults = defaultRules();
    expect(defaults.rules.map((r) => r.rule)).toEqual(['drop_seen', 'boost_new', 'shuffle', 'diversity']);
    expect((await buildRules(defaults)).map((r) => r.name)).toEqual(['drop_seen', 'boost_new', 'shuffle', 'diversity']);
    const example = loadRulesFile(resolve(__dirname, '../rules.example.yaml'));
    expect((await buildRules(example)).map((r) => r.name)).toEqual(['drop_seen', 'block', 'boost_new', 'shuffle', 'diversity', 'pin']);
  });

  it('loads MMR vectors relative to the rules file, naming the field when they cannot be loaded', async () => {
    const vectors = writeItemVectors(
      ['a', 'b'],
      [
        [1, 0],
        [0, 1],
      ],
    );
    const good = file('rules.yaml', `rules:\n  - rule: diversity\n    kind: mmr\n    lambda: 0.5\n    vectors: ${vectors}\n`);
    expect((await buildRules(loadRulesFile(good)))[0]).toMatchObject({ name: 'diversity', type: 'diversity' });
    const missing = file(
      'rules.yaml',
      'rules:\n  - rule: shuffle\n    epsilon: 0.1\n  - rule: diversity\n    kind: mmr\n    lambda: 0.5\n    vectors: nowhere\n',
    );
    await expect(buildRules(loadRulesFile(missing))).rejects.toThrow(
      new RegExp(`${missing}: rules\\[1\\]\\.vectors: cannot read .*nowhere/manifest\\.json`),
    );
  });
});
