#!/usr/bin/env node
import { UsageError } from '@recsys/data';
import { parseUpArgs, usage } from './cli-args.js';
import { type Pipeline, launchPipeline } from './pipeline.js';
import { firstApiKey, readyMessage } from './ready-message.js';
import { repoRoot } from '@recsys/service-kit';

const say = (line: string) => process.stdout.write(`${line}\n`);

const WARM_UP_REQUESTS = 20;

/**
 * A few requests through the gateway before the ready message: the first calls into freshly started processes are slow
 * (code not yet optimised, connections not yet open) and would be answered with fallbacks.
 */
async function warmUp(httpUrl: string, gatewayEnv: Record<string, string>): Promise<void> {
  const authOff = ['true', '1'].includes(gatewayEnv.AUTH_DISABLED ?? '');
  const key = authOff ? undefined : firstApiKey(gatewayEnv.API_KEYS);
  if (!authOff && key === undefined) return;
  say(`gateway: warming up with ${WARM_UP_REQUESTS} requests (the first ones may be answered with fallbacks)`);
  const headers: Record<string, string> = key === undefined ? {} : { 'x-api-key': key };
  for (let i = 1; i <= WARM_UP_REQUESTS; i++) {
    try {
      const response = await fetch(`${httpUrl}/v1/recommendations?user_id=user-${i}&k=10`, { headers, signal: AbortSignal.timeout(5000) });
      await response.arrayBuffer();
    } catch {
      // Warm-up only: a failure here shows up in the service logs, and the person's own call will say more.
    }
  }
}

async function main(): Promise<number> {
  let command;
  try {
    command = parseUpArgs(process.argv.slice(2), process.env, repoRoot);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`recsys-up: ${error.message}\n\n${usage}`);
    return 2;
  }
  if (command.help) {
    say(usage);
    return 0;
  }
  const { options } = command;
  const started = Date.now();
  let pipeline: Pipeline | undefined;
  let stopping: Promise<number> | undefined;
  let stoppingSince = 0;

  /** Stops the services in reverse order; a second signal kills them at once. */
  const stop = (reason: string, code: number): Promise<number> => {
    if (stopping !== undefined) return stopping;
    say(`\n${reason}: stopping the services`);
    stopping = (pipeline?.close() ?? Promise.resolve()).then(() => {
      say('stopped');
      return code;
    });
    return stopping;
  };
  const done = new Promise<number>((finish) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        // `timeout` and terminals may deliver one Ctrl-C twice (to the process and its group): only a later one kills.
        if (stopping !== undefined) {
          if (Date.now() - stoppingSince < 2000) return;
          say(`${signal} again: killing the services`);
          process.exit(130);
        }
        stoppingSince = Date.now();
        void stop(signal, 0).then(finish);
      });
    }
    launchPipeline({ ...options, log: say }, (created) => {
      pipeline = created;
      created.onUnexpectedExit = (name) => void stop(`${name} ended unexpectedly`, 1).then(finish);
    }).then(
      async (running) => {
        if (running.httpUrl) await warmUp(running.httpUrl, running.envOf('gateway'));
        if (stopping !== undefined) return;
        say(
          readyMessage({
            addresses: running.addresses,
            httpUrl: running.httpUrl,
            workDir: options.workDir,
            modelsDir: running.modelsDir,
            indexDir: running.indexDir,
            redisUrl: options.redisUrl,
            gatewayEnv: running.httpUrl ? running.envOf('gateway') : {},
            seconds: (Date.now() - started) / 1000,
          }),
        );
      },
      (error: unknown) => {
        // A start-up cut short by Ctrl-C ends as the signal handler says.
        if (stopping !== undefined) return;
        console.error(`recsys-up: ${error instanceof Error ? error.message : String(error)}`);
        finish(1);
      },
    );
  });
  return done;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`recsys-up: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
