import { type RedisCluster, type RedisServer, removeTrainedModels } from '@recsys/testing';

export default async function globalTeardown(): Promise<void> {
  const started = globalThis as { recsysRedis?: RedisServer; recsysRedisCluster?: RedisCluster };
  await Promise.all([started.recsysRedis?.destroy(), started.recsysRedisCluster?.destroy()]);
  if (process.env.RECSYS_TEST_RUN) removeTrainedModels(process.env.RECSYS_TEST_RUN);
}
