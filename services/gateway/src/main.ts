import { ConfigError, createLogger, exitOnSignals } from '@recsys/service-kit';
import { loadGatewayConfig } from './config.js';
import { startGatewayService } from './gateway-app.js';

async function main(): Promise<void> {
  const config = loadGatewayConfig();
  const logger = createLogger('gateway', config.logLevel);
  const service = await startGatewayService(config, logger);
  exitOnSignals(service, logger);
  // SIGHUP reloads the API keys (as the stages reload their models on it).
  process.on('SIGHUP', () => service.reloadKeys());
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  console.error('gateway failed to start:', error);
  process.exit(1);
});
