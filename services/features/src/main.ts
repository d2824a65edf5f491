import { createLogger, exitOnSignals } from '@recsys/service-kit';
import { loadFeaturesConfig, type FeaturesConfig } from './config.js';
import { startFeatureService } from './feature-app.js';

async function main(): Promise<void> {
  let config: FeaturesConfig;
  try {
    config = loadFeaturesConfig();
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  }
  const logger = createLogger('features', config.logLevel);
  const service = await startFeatureService(config, logger);
  exitOnSignals(service, logger);
}

main().catch((error: unknown) => {
  console.error('features service failed to start:', error);
  process.exit(1);
});
