import { ConfigError, createLogger, exitOnSignals } from '@recsys/service-kit';
import { loadRerankingConfig } from './config.js';
import { startRerankingService } from './reranking-app.js';

async function main(): Promise<void> {
  const config = loadRerankingConfig();
  const logger = createLogger('reranking', config.logLevel);
  const service = await startRerankingService(config, logger);
  exitOnSignals(service, logger);
}

main().catch((error: unknown) => {
  // A bad variable or rules file (found while reading it or loading the vectors it names) is a configuration error.
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  console.error('reranking service failed to start:', error);
  process.exit(1);
});
