import type { RedisServer } from '@recsys/testing';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { recsysRedis?: RedisServer }).recsysRedis?.destroy();
}
