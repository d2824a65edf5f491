#!/usr/bin/env node
import { numberFlag, type Random, UsageError } from '@recsys/data';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { offlineCtr, simulate, writeWindow } from './simulator.js';
import { SimulatedWorld } from './world.js';

const usage = `usage: recsys-simulate --gateway URL [options]

Simulated users call the gateway (POST /v1/recommendations), react to every shown item by the synthetic world's
planted tastes (user cluster x item category affinity and item quality, which the models never see), and send
their clicks and purchases back (POST /v1/feedback) with the answer's request id. Prints one JSON line: requests,
impressions, clicks, purchases, CTR@k, conversion, and CTR@k of random items and of the ground-truth oracle
for the same simulated users (the floor and the ceiling).

  --gateway URL           the gateway's REST base URL (required), e.g. http://127.0.0.1:8080
  --api-key KEY           sent as a bearer token (default: $RECSYS_API_KEY; none when unset)
  --requests N            recommendation requests (default 1000), each from a uniformly drawn user
  --k N                   items per request (default 10)
  --concurrency N         requests in flight (default 8)
  --seed N                (default 0)
  --start-time UNIX_S     simulated time of the first request (default now); requests spread over one day
  --data-seed N --users N --items N   the world: the synthetic generator's settings the served models were
                          trained on (defaults 42, 2000, 1000: recsys train's default data)
  --record DIR            also write what was shown and done as dataset files (the world's users and items,
                          impressions with value 1 clicked, 0 not): data the trainer reads with files:DIR`;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      gateway: { type: 'string' },
      'api-key': { type: 'string' },
      requests: { type: 'string' },
      k: { type: 'string' },
      concurrency: { type: 'string' },
      seed: { type: 'string' },
      'start-time': { type: 'string' },
      'data-seed': { type: 'string' },
      users: { type: 'string' },
      items: { type: 'string' },
      record: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (!values.gateway) throw new UsageError('--gateway: required (the gateway REST base URL)');
  if (!/^https?:\/\/\S+$/.test(values.gateway))
    throw new UsageError(`--gateway: expected an http:// or https:// URL, got "${values.gateway}"`);
  const world = SimulatedWorld.create({
    seed: numberFlag('data-seed', values['data-seed'], 'whole') ?? 42,
    users: numberFlag('users', values.users, 'count') ?? 2000,
    items: numberFlag('items', values.items, 'count') ?? 1000,
    interactionsPerUser: 0,
  });
  const requests = numberFlag('requests', values.requests, 'count') ?? 1000;
  const k = numberFlag('k', values.k, 'count') ?? 10;
  const seed = numberFlag('seed', values.seed, 'whole') ?? 0;
  const result = await simulate({
    gateway: values.gateway,
    apiKey: values['api-key'] ?? process.env.RECSYS_API_KEY,
    world,
    requests,
    k,
    concurrency: numberFlag('concurrency', values.concurrency, 'count') ?? 8,
    seed,
    startTime: numberFlag('start-time', values['start-time'], 'whole') ?? Math.floor(Date.now() / 1000),
  });
  if (values.record)
    writeWindow(resolve(values.record), { ...world.dataset, interactions: { ...world.dataset.interactions, length: 0 } }, result.shown);
  const items = world.dataset.items.ids.length;
  const random = (_user: number, r: Random) => Array.from(r.permutation(items).subarray(0, k));
  const { shown, ...summary } = result;
  console.log(
    JSON.stringify({
      ...summary,
      [`ctr@${k}`]: result.ctrAtK,
      [`random_ctr@${k}`]: offlineCtr(world, requests, seed, random),
      [`oracle_ctr@${k}`]: offlineCtr(world, requests, seed, (user) => world.oracle(user, k)),
      recorded: values.record ? shown.length : 0,
    }),
  );
  return result.failedRequests > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`recsys-simulate: ${(error as Error).message}\n\n${usage}`);
      process.exitCode = 2;
    } else {
      console.error(`recsys-simulate: ${(error as Error).message}`);
      process.exitCode = 1;
    }
  },
);
