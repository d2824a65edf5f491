#!/usr/bin/env node
import { ConfigError, createLogger, exitOnSignals } from '@recsys/service-kit';
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
  // Signals before the start has finished stop what has started so far.
  exitOnSignals(() => state.running?.close() ?? Promise.resolve(), logger);
  const started = await startAllInOne(process.env, {
    deferStages,
    // A stage thread that ended on its own ends the process, as the stage's own process would have: its supervisor
    // starts it again, rather than it serving on without that stage.
    onStageThreadExit: (name, error) => {
      logger.fatal({ err: error, stage: name }, 'a stage thread ended; stopping the process');
      void (state.running?.close() ?? Promise.resolve()).finally(() => process.exit(1));
    },
  });
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
