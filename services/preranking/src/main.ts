import { createLogger, exitOnSignals } from '@recsys/service-kit';
import { loadPrerankingConfig, type PrerankingConfig } from './config.js';
import { startPrerankingService } from './preranking-app.js';

async function main(): Promise<void> {
  let config: PrerankingConfig;
  try {
    config = loadPrerankingConfig();
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  }
  const logger = createLogger('preranking', config.logLevel);
  const service = await startPrerankingService(config, logger);
  exitOnSignals(service, logger);
  // An operator (or a deploy hook) can ask for a model check without waiting for the watch or the poll.
  process.on('SIGHUP', () => void service.checkModels());
}

main().catch((error: unknown) => {
  console.error('preranking service failed to start:', error);
  process.exit(1);
});
