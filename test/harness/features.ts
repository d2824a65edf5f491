import { randomUUID } from 'node:crypto';
import { features } from '@recsys/contracts';
import { loadFeaturesConfig, startFeatureService, type FeaturesConfig } from '@recsys/features';
import { createLogger, createServiceClient, type RunningGrpcService, type ServiceClient } from '@recsys/service-kit';

export type FeatureClient = ServiceClient<typeof features.FeatureService.method>;

/** A feature service in this process on a free port; Redis keys under a fresh prefix so test files never collide. */
export async function startTestFeatureService(env: Record<string, string> = {}): Promise<{
  service: RunningGrpcService;
  client: FeatureClient;
  config: FeaturesConfig;
  stop(): Promise<void>;
}> {
  const config = loadFeaturesConfig({
    GRPC_PORT: '0',
    REDIS_KEY_PREFIX: `t${randomUUID().slice(0, 8)}:`,
    LOG_LEVEL: 'silent',
    ...env,
  });
  const service = await startFeatureService(config, createLogger('features', 'silent'));
  const client = createServiceClient(features.FeatureService, service.address, { defaultTimeoutMs: 5000 });
  return {
    service,
    client,
    config,
    stop: async () => {
      client.close();
      await service.close();
    },
  };
}
