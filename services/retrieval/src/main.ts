import { createLogger, exitOnSignals } from '@recsys/service-kit';
import { loadRetrievalConfig, type RetrievalConfig } from './config.js';
import { startRetrievalService } from './retrieval-app.js';

async function main(): Promise<void> {
  let config: RetrievalConfig;
  try {
    config = loadRetrievalConfig();
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  }
  const logger = createLogger('retrieval', config.logLevel);
  const service = await startRetrievalService(config, logger);
  exitOnSignals(service, logger);
}

main().catch((error: unknown) => {
  console.error('retrieval service failed to start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
