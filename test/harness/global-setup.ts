import { RedisServer } from '@recsys/testing';

/** Starts one real redis-server for the whole run; tests read its URL from REDIS_TEST_URL. */
export default async function globalSetup(): Promise<void> {
  const server = await RedisServer.start();
  (globalThis as { recsysRedis?: RedisServer }).recsysRedis = server;
  process.env.REDIS_TEST_URL = server.url;
}
