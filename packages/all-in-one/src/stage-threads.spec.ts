import { create } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import { features, reranking } from '@recsys/contracts';
import { createLogger, createServiceClient, inProcessAddresses } from '@recsys/service-kit';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAllInOneConfig, serviceEnvOf } from './all-in-one.js';
import { SERVICES } from './services.js';
import { startStageThread } from './stage-threads.js';

const logger = createLogger('test', 'silent');
const base = { LOG_LEVEL: 'silent', PATH: process.env.PATH };
const config = loadAllInOneConfig(base);
const envOf = (name: 'reranking' | 'retrieval', extra: NodeJS.ProcessEnv = {}) => serviceEnvOf(name, { ...base, ...extra }, config);
const threadNames = () => readdirSync('/proc/self/task').map((task) => readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim());
const noExit = () => {
  throw new Error('a stage thread ended on its own');
};

/**
 * A request with the user passed down and categories to diversify; with no feature service up, the rules that read
 * more report their failed reads in the answer (made from the thread over its link to this one).
 */
const REQUEST = create(reranking.RerankRequestSchema, {
  userId: 'u1',
  limit: 10,
  candidates: Array.from({ length: 30 }, (_, i) => ({ itemId: `i${i}`, score: 1 - i / 100, category: `c${i % 3}` })),
  userState: create(features.GetUserFeaturesResponseSchema, { found: true, user: { userId: 'u1' }, history: [{ itemId: 'i0' }] }),
  userHistoryLimit: 50,
});

/** An answer without the rules' timings. */
const timeless = (answer: reranking.RerankResponse) => ({ ...answer, rules: answer.rules.map((rule) => ({ ...rule, durationMs: 0 })) });

describe('a stage on a thread of its own (all-in-one STAGE_THREADS)', () => {
  it('serves its address with the same answers and errors as on the main thread, on a thread named after it, until closed', async () => {
    const client = createServiceClient(reranking.RerankingService, 'inproc://reranking', { defaultTimeoutMs: 5000 });
    // A passed-down user that is not the request's: INVALID_ARGUMENT naming the field.
    const bad = { ...REQUEST, userState: { ...REQUEST.userState!, user: { ...REQUEST.userState!.user!, userId: 'u2' } } };
    const here = await SERVICES.reranking(envOf('reranking')).start(logger);
    const expected = timeless(await client.rerank(REQUEST));
    const expectedError = await client.rerank(bad).catch((error: unknown) => error);
    await here.running.close();
    expect(expected.candidates.length).toBe(10);
    expect(expectedError).toMatchObject({ code: status.INVALID_ARGUMENT });

    const thread = await startStageThread('reranking', envOf('reranking'), logger, noExit);
    try {
      expect(threadNames()).toContain('reranking');
      // The feature service is not up: both answers carry the rules' errors about it, from the thread's calls here.
      expect(timeless(await client.rerank(REQUEST))).toEqual(expected);
      await expect(client.rerank(bad)).rejects.toEqual(expectedError);
      const metrics = await thread.metrics();
      const handled = metrics.find((metric) => metric.name === 'grpc_server_handled_total');
      expect(handled?.values.map((value) => [value.labels.service, value.labels.code, value.value])).toEqual(
        expect.arrayContaining([
          ['reranking', 'OK', 1],
          ['reranking', 'INVALID_ARGUMENT', 1],
        ]),
      );
    } finally {
      await thread.close();
      client.close();
    }
    expect(threadNames()).not.toContain('reranking');
    expect(inProcessAddresses()).not.toContain('inproc://reranking');
    await expect(thread.metrics()).rejects.toThrow("reranking's thread is closing");
  });

  it('tells the process when the thread ends on its own, and its address answers UNAVAILABLE from then on', async () => {
    const client = createServiceClient(reranking.RerankingService, 'inproc://reranking', { defaultTimeoutMs: 5000 });
    const ended = new Promise<[string, Error]>((resolve) => {
      void startStageThread('reranking', envOf('reranking'), logger, (name, error) => resolve([name, error])).then(async (thread) => {
        expect((await client.rerank(REQUEST)).candidates).toHaveLength(10);
        // What an uncaught error in the stage would do: the thread ends without being asked to close.
        await thread.worker.terminate();
      });
    });
    const [name, error] = await ended;
    expect(name).toBe('reranking');
    expect(error.message).toMatch(/reranking's thread ended \(code \d+\)/);
    await expect(client.rerank(REQUEST)).rejects.toMatchObject({ code: status.UNAVAILABLE });
    expect(inProcessAddresses()).not.toContain('inproc://reranking');
    client.close();
  });

  it("fails to start with the stage's own reason, leaving no thread and no address behind", async () => {
    const empty = mkdtempSync(join(tmpdir(), 'stage-thread-'));
    try {
      await expect(
        startStageThread('retrieval', envOf('retrieval', { MODELS_DIR: empty, INDEX_DIR: empty }), logger, noExit),
      ).rejects.toThrow(/^retrieval failed to start on its thread: no index version under /);
      expect(inProcessAddresses()).not.toContain('inproc://retrieval');
      expect(threadNames()).not.toContain('retrieval');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
