import { type RedisServer, removeTrainedModels } from '@recsys/testing';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { recsysRedis?: RedisServer }).recsysRedis?.destroy();
  if (process.env.RECSYS_TEST_RUN) removeTrainedModels(process.env.RECSYS_TEST_RUN);
}
