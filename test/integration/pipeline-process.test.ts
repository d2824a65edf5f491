import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preranking, ranking, reranking, retrieval } from '@recsys/contracts';
import { type PipelineOptions, type RunningPipeline, SERVICE_NAMES, ServiceStartError, startPipeline } from '@recsys/pipeline';
import { checkHealth, createServiceClient } from '@recsys/service-kit';
import { trainedModels } from '@recsys/testing';

const API_KEY = `key-${randomUUID()}`;

/** Whether a process id is alive (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const pidsIn = (lines: string[]) => lines.flatMap((line) => [...line.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1])));

describe('the pipeline as processes (startPipeline)', () => {
  let workDir: string;
  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'recsys-pipeline-'));
  });
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  const options = async (log: string[], extra: Partial<PipelineOptions> = {}): Promise<PipelineOptions> => ({
    workDir,
    modelsDir: (await trainedModels()).root,
    redisUrl: process.env.REDIS_TEST_URL,
    ports: { features: 0, retrieval: 0, preranking: 0, ranking: 0, reranking: 0, gateway: 0, http: 0 },
    // A key prefix of its own: other test files share the Redis.
    env: { features: { REDIS_KEY_PREFIX: `pl${randomUUID().slice(0, 8)}:` }, gateway: { API_KEYS: `pipeline-test:${API_KEY}` } },
    log: (line) => log.push(line),
    ...extra,
  });

  it('serves every stage, answers through the chain, restarts a stopped service, and leaves no process behind', async () => {
    const models = await trainedModels();
    const log: string[] = [];
    const pipeline: RunningPipeline = await startPipeline(await options(log));
    const pids: number[] = [];
    const clients = {
      retrieval: createServiceClient(retrieval.RetrievalService, pipeline.addresses.retrieval, { defaultTimeoutMs: 10_000 }),
      preranking: createServiceClient(preranking.PrerankingService, pipeline.addresses.preranking, { defaultTimeoutMs: 10_000 }),
      ranking: createServiceClient(ranking.RankingService, pipeline.addresses.ranking, { defaultTimeoutMs: 10_000 }),
      reranking: createServiceClient(reranking.RerankingService, pipeline.addresses.reranking, { defaultTimeoutMs: 10_000 }),
    };
    try {
      expect(pipeline.modelsDir).toBe(models.root);
      expect(pipeline.indexDir).toBe(join(workDir, 'indexes'));
      for (const name of SERVICE_NAMES) {
        expect(pipeline.addresses[name]).toMatch(/^127\.0\.0\.1:\d+$/);
        expect(await checkHealth(pipeline.addresses[name], '', 2000)).toBe('SERVING');
        pids.push(pipeline.pid(name)!);
      }
      expect(new Set(pids).size).toBe(SERVICE_NAMES.length);
      expect(pids.every(alive)).toBe(true);
      expect(log).toContain(`index: building from two-tower version ${models.version} into ${pipeline.indexDir}`);
      expect(log.some((line) => line.startsWith(`features: loaded ${models.setup.dataset.users.ids.length} users`))).toBe(true);
      expect(pipeline.output('retrieval')).toContain('"level":"info"');

      // The chain: the loaded features and the built index behind retrieval, then each stage on the previous one's answer.
      const userId = models.setup.dataset.users.ids[7]!;
      const retrieved = await clients.retrieval.retrieve({ userId, limit: 60 });
      expect(retrieved.indexVersion).toBe('1');
      expect(retrieved.coldStart).toBe(false);
      expect(retrieved.channels.map((c) => [c.channel, c.error])).toEqual([
        ['two_tower', ''],
        ['popular', ''],
        ['item_to_item', ''],
      ]);
      expect(retrieved.candidates).toHaveLength(60);
      const prerank = await clients.preranking.prerank({
        userId,
        candidates: retrieved.candidates,
        limit: 30,
        userEmbedding: retrieved.userEmbedding,
        embeddingModelVersion: retrieved.modelVersion,
      });
      expect(prerank.candidates).toHaveLength(30);
      const ranked = await clients.ranking.rank({ userId, candidates: prerank.candidates, limit: 20 });
      expect(ranked.missingItemIds).toEqual([]);
      expect(ranked.candidates).toHaveLength(20);
      const reranked = await clients.reranking.rerank({ userId, candidates: ranked.candidates, limit: 10 });
      expect(reranked.candidates).toHaveLength(10);
      expect(new Set(reranked.candidates.map((c) => c.itemId)).size).toBe(10);

      // The gateway's REST API, with the API key passed through (so auth stays on).
      expect(pipeline.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const url = `${pipeline.httpUrl}/v1/recommendations`;
      const body = JSON.stringify({ user_id: userId, k: 10, budget_ms: 1000 });
      const headers = { 'content-type': 'application/json' };
      expect((await fetch(url, { method: 'POST', headers, body })).status).toBe(401);
      const answer = await fetch(url, { method: 'POST', headers: { ...headers, 'x-api-key': API_KEY }, body });
      expect(answer.status).toBe(200);
      const recommended = (await answer.json()) as { items: { item_id: string }[] };
      expect(recommended.items).toHaveLength(10);
      expect(new Set(recommended.items.map((i) => i.item_id)).size).toBe(10);

      const before = pipeline.pid('ranking');
      await pipeline.stop('ranking');
      expect(pipeline.pid('ranking')).toBeUndefined();
      expect(alive(before!)).toBe(false);
      await expect(checkHealth(pipeline.addresses.ranking, '', 500)).rejects.toThrow();
      await pipeline.start('ranking');
      expect(pipeline.pid('ranking')).not.toBe(before);
      pids.push(pipeline.pid('ranking')!);
      expect(await checkHealth(pipeline.addresses.ranking, '', 2000)).toBe('SERVING');
      expect((await clients.ranking.rank({ userId, candidates: prerank.candidates, limit: 5 })).candidates).toHaveLength(5);
      // Nothing reported as an unexpected exit: the stop was asked for.
      expect(log.filter((line) => line.includes('ended unexpectedly'))).toEqual([]);
    } finally {
      Object.values(clients).forEach((c) => c.close());
      await pipeline.close();
    }
    expect(pids.filter(alive)).toEqual([]);
    expect(pipeline.pid('features')).toBeUndefined();
    expect(pipeline.output('features')).toContain('features service stopped');
  });

  it('reuses the index it built, and a service that exits at start-up fails the start, naming it, with nothing left running', async () => {
    const log: string[] = [];
    const started = startPipeline(
      await options(log, {
        skip: ['preranking', 'reranking', 'gateway'],
        env: { features: { REDIS_KEY_PREFIX: `pl${randomUUID().slice(0, 8)}:` }, ranking: { RANKING_MAX_BATCH_SIZE: 'many' } },
      }),
    );
    await expect(started).rejects.toThrow(ServiceStartError);
    await expect(started).rejects.toThrow(/^ranking exited during start-up \(exit code 2\); its last output:\n.*RANKING_MAX_BATCH_SIZE/);
    expect(log.some((line) => /^index: version 1 in .* holds two-tower version 1; build skipped$/.test(line))).toBe(true);
    const pids = pidsIn(log);
    expect(pids.length).toBeGreaterThanOrEqual(1);
    expect(pids.filter(alive)).toEqual([]);
  });
});
