import { randomUUID } from 'node:crypto';
import { RedisServer } from '@recsys/testing';

/** Starts one real redis-server for the whole run (tests read its URL from REDIS_TEST_URL) and names the run. */
export default async function globalSetup(): Promise<void> {
  const server = await RedisServer.start();
  (globalThis as { recsysRedis?: RedisServer }).recsysRedis = server;
  process.env.REDIS_TEST_URL = server.url;
  // Models trained for tests (trainedModels) are shared by every worker of this run, then removed.
  process.env.RECSYS_TEST_RUN = randomUUID().slice(0, 12);
}
