// The pipeline the standalone fuzz and overload scripts run against: every service its own process (split) on a real
// redis-server, small models trained once (the testing package's trainedModels), auth on with a fresh key.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPipeline, SERVICE_NAMES, type RunningPipeline } from '@recsys/pipeline';
import { RedisServer, trainedModels } from '@recsys/testing';

export interface Target {
  pipeline: RunningPipeline;
  apiKey: string;
  /** gRPC address per service other than the gateway. */
  stageAddresses: Record<string, string>;
  pids: Record<string, number>;
  close(): Promise<void>;
}

/** modelsDir: models to serve (test:resilience's RESILIENCE_MODELS_DIR); default the test models (trainedModels). */
export async function launchTarget(
  gatewayEnv: Record<string, string> = {},
  log: (line: string) => void = () => undefined,
  modelsDir?: string,
): Promise<Target> {
  const models = modelsDir === undefined ? await trainedModels() : { root: modelsDir };
  const redis = await RedisServer.start();
  const workDir = mkdtempSync(join(tmpdir(), 'recsys-resilience-'));
  const apiKey = randomBytes(16).toString('hex');
  const ports = { features: 0, retrieval: 0, preranking: 0, ranking: 0, reranking: 0, gateway: 0, http: 0 };
  let pipeline: RunningPipeline;
  try {
    pipeline = await startPipeline({
      workDir,
      modelsDir: models.root,
      redisUrl: redis.url,
      ports,
      metrics: true,
      log,
      // No per-key limit (the load is one key); the feature service gets 2 s for a feedback write, so that a write slowed
      // by a busy machine is not mistaken for an answer to the input (it would rightly be a 503).
      env: {
        gateway: {
          API_KEYS: `resilience:${apiKey}`,
          RATE_LIMIT_PER_SECOND: '0',
          FEATURES_TIMEOUT_MS: '2000',
          LOG_LEVEL: 'warn',
          ...gatewayEnv,
        },
      },
    });
  } catch (error) {
    await redis.destroy();
    rmSync(workDir, { recursive: true, force: true });
    throw error;
  }
  const stageAddresses = Object.fromEntries(SERVICE_NAMES.filter((n) => n !== 'gateway').map((n) => [n, pipeline.addresses[n]]));
  const pids = Object.fromEntries(SERVICE_NAMES.map((n) => [n, pipeline.pid(n)!]));
  return {
    pipeline,
    apiKey,
    stageAddresses,
    pids,
    close: async () => {
      await pipeline.close();
      await redis.destroy();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}
