#!/usr/bin/env node
import { ConfigError, createLogger } from '@recsys/service-kit';
import { loadAllInOneConfig, startAllInOne, type AllInOne } from './all-in-one.js';

/**
 * The all-in-one process. STAGES_START=on-sigusr2 starts the feature service alone and the rest on SIGUSR2 (the launcher
 * loads the features and builds the index in between); the default starts everything at once.
 */
async function main(): Promise<void> {
  const deferStages = process.env.STAGES_START === 'on-sigusr2';
  if (!['', undefined, 'now', 'on-sigusr2'].includes(process.env.STAGES_START))
    throw new ConfigError('STAGES_START', `expected now or on-sigusr2, got "${process.env.STAGES_START}"`);
  const logger = createLogger('all-in-one', loadAllInOneConfig().logLevel);
  const state: { running?: AllInOne } = {};
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    (state.running?.close() ?? Promise.resolve()).then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const started = await startAllInOne(process.env, { deferStages });
  state.running = started;
  if (deferStages) {
    logger.info('feature service started; the stages start on SIGUSR2');
    process.once('SIGUSR2', () => {
      started.startStages().then(
        () => logger.info({ metricsPort: started.metricsPort }, 'all-in-one: every service started'),
        (error: unknown) => {
          logger.error({ err: error }, 'the stages failed to start');
          process.exit(1);
        },
      );
    });
  } else {
    logger.info({ metricsPort: started.metricsPort }, 'all-in-one: every service started');
  }
  process.on('SIGHUP', () => started.reload());
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  console.error('all-in-one failed to start:', error);
  process.exit(1);
});
