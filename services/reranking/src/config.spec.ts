import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRerankingConfig } from './config.js';
import { FEATURES_TIMEOUT_DEFAULT_MS } from '@recsys/service-kit';

describe('reranking config', () => {
  it('has defaults: port 15055, the local feature service, the built-in rules', () => {
    const config = loadRerankingConfig({});
    expect(config).toMatchObject({
      grpcPort: 15055,
      featuresAddress: '127.0.0.1:15051',
      featuresTimeoutMs: FEATURES_TIMEOUT_DEFAULT_MS,
      featuresAttempts: 2,
      defaultLimit: 20,
      maxLimit: 500,
      rules: { source: 'built-in defaults' },
    });
    expect(config.rules.rules.map((r) => r.name)).toEqual(['drop_seen', 'boost_new', 'shuffle', 'diversity']);
  });

  it('names the first invalid variable', () => {
    expect(() => loadRerankingConfig({ FEATURES_ADDRESS: 'http://x' })).toThrow(
      'invalid configuration: FEATURES_ADDRESS: must be host:port',
    );
    expect(() => loadRerankingConfig({ FEATURES_ATTEMPTS: '9' })).toThrow(/FEATURES_ATTEMPTS/);
    expect(() => loadRerankingConfig({ DEFAULT_LIMIT: '50', MAX_LIMIT: '10' })).toThrow(
      'invalid configuration: DEFAULT_LIMIT: must not exceed MAX_LIMIT (10)',
    );
  });

  it('reads the rules file RERANKING_RULES_FILE names, and names the file and the field when it is wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'recsys-rules-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'rules:\n  - rule: block\n    item_ids: [x]\n');
    expect(loadRerankingConfig({ RERANKING_RULES_FILE: good }).rules).toMatchObject({ source: good, rules: [{ name: 'block' }] });
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'rules:\n  - rule: block\n    item_ids: [x]\n  - rule: shuffle\n    epsilon: -1\n');
    expect(() => loadRerankingConfig({ RERANKING_RULES_FILE: bad })).toThrow(
      `invalid configuration: RERANKING_RULES_FILE: ${bad}: rules[1].epsilon: must be a number > 0`,
    );
  });
});
