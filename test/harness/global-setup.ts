import { randomUUID } from 'node:crypto';
import { RedisCluster, RedisServer } from '@recsys/testing';

/**
 * Starts one real redis-server (tests read its URL from REDIS_TEST_URL) and one 3-master Redis
 * Cluster (seed nodes in REDIS_CLUSTER_TEST_NODES, the form REDIS_CLUSTER_NODES takes) for the
 * whole run, both on free loopback ports, and names the run.
 */
export default async function globalSetup(): Promise<void> {
  const [server, cluster] = await Promise.all([RedisServer.start(), RedisCluster.start(3)]);
  Object.assign(globalThis as object, { recsysRedis: server, recsysRedisCluster: cluster });
  process.env.REDIS_TEST_URL = server.url;
  process.env.REDIS_CLUSTER_TEST_NODES = cluster.seeds;
  // Models trained for tests (trainedModels) are shared by every worker of this run, then removed.
  process.env.RECSYS_TEST_RUN = randomUUID().slice(0, 12);
}
