import { createLogger, exitOnSignals } from '@recsys/service-kit';
import { loadRankingConfig, type RankingConfig } from './config.js';
import { startRankingService } from './ranking-app.js';

async function main(): Promise<void> {
  let config: RankingConfig;
  try {
    config = loadRankingConfig();
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  }
  const logger = createLogger('ranking', config.logLevel);
  const service = await startRankingService(config, logger);
  exitOnSignals(service, logger);
  // An operator (or a deploy hook) can ask for a model check without waiting for the watch or the poll.
  process.on('SIGHUP', () => void service.checkModels());
}

main().catch((error: unknown) => {
  console.error('ranking service failed to start:', error);
  process.exit(1);
});
