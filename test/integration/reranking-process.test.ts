import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { common, reranking } from '@recsys/contracts';
import { checkHealth, createServiceClient, freePort, waitForServing } from '@recsys/service-kit';
import { builtEntry, runNode, startNode } from '@recsys/testing';
import { startTestFeatureService } from '../harness/features';

const main = () => builtEntry('services/reranking/dist/main.js');

function rulesFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'recsys-rules-')), name);
  writeFileSync(path, text);
  return path;
}

describe('reranking service as a process', () => {
  it('exits at start-up naming the rules file and the bad field', async () => {
    const bad = rulesFile(
      'rules.yaml',
      [
        'rules:',
        '  - rule: drop_seen',
        '  - rule: diversity',
        '    kind: category_window',
        '    window: 0',
        '    max_per_category: 1',
      ].join('\n'),
    );
    const result = await runNode(main(), [], { RERANKING_RULES_FILE: bad, GRPC_PORT: '0' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `invalid configuration: RERANKING_RULES_FILE: ${bad}: rules[1].window: must be an integer from 2 to 1000`,
    );

    const vectors = rulesFile(
      'rules.json',
      JSON.stringify({ rules: [{ rule: 'diversity', kind: 'mmr', lambda: 0.5, vectors: 'missing' }] }),
    );
    const missing = await runNode(main(), [], { RERANKING_RULES_FILE: vectors, GRPC_PORT: '0' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`RERANKING_RULES_FILE: ${vectors}: rules[0].vectors: cannot read`);

    const address = await runNode(main(), [], { FEATURES_ADDRESS: 'nowhere', GRPC_PORT: '0' });
    expect(address.code).toBe(2);
    expect(address.stderr).toContain('invalid configuration: FEATURES_ADDRESS: must be host:port');
  });

  it('serves with a rules file: healthy, answers with seen items dropped and pins placed, exports metrics, stops on SIGTERM', async () => {
    const features = await startTestFeatureService({ REDIS_URL: process.env.REDIS_TEST_URL! });
    const port = await freePort();
    const metricsPort = await freePort();
    const address = `127.0.0.1:${port}`;
    const rules = rulesFile(
      'rules.yaml',
      [
        'rules:',
        '  - rule: drop_seen',
        '    event_types: [view, purchase]',
        '  - rule: pin',
        '    pins:',
        '      - { item_id: promo, position: 1, insert: true }',
      ].join('\n'),
    );
    const service = startNode(main(), {
      GRPC_PORT: String(port),
      METRICS_PORT: String(metricsPort),
      FEATURES_ADDRESS: features.service.address,
      FEATURES_TIMEOUT_MS: '5000',
      RERANKING_RULES_FILE: rules,
    });
    const client = createServiceClient(reranking.RerankingService, address, { defaultTimeoutMs: 10000 });
    try {
      await waitForServing(address, 15000);
      expect(await checkHealth(address, 'recsys.reranking.v1.RerankingService')).toBe('SERVING');
      const userId = `u-${randomUUID()}`;
      await features.client.recordFeedback({
        events: [{ eventId: randomUUID(), userId, itemId: 'b', eventType: common.EventType.PURCHASE }],
      });
      const response = await client.rerank({
        userId,
        candidates: ['a', 'b', 'c'].map((itemId, i) => ({ itemId, score: 1 - i / 10 })),
      });
      expect(response.candidates.map((c) => c.itemId)).toEqual(['promo', 'a', 'c']);
      expect(response.rules.map((r) => [r.rule, r.removedItemIds, r.changedItemIds, r.error])).toEqual([
        ['drop_seen', ['b'], [], ''],
        ['pin', [], ['promo'], ''],
      ]);

      const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text());
      expect(metrics).toContain('reranking_rule_removed_items_total{rule="drop_seen",service="reranking"} 1');
      expect(metrics).toContain('reranking_rule_runs_total{rule="pin",service="reranking"} 1');

      service.child.kill('SIGTERM');
      const exit = await service.exited;
      expect(exit.code).toBe(0);
      expect(exit.stdout).toContain('reranking service stopped');
      expect(exit.stdout).toContain(rules);
    } finally {
      client.close();
      service.child.kill('SIGKILL');
      await features.stop();
    }
  });
});
