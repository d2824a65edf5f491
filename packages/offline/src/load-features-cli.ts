#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { features } from '@recsys/contracts';
import { fingerprint, numberFlag } from '@recsys/data';
import { createServiceClient, defaultAddress, waitForServing } from '@recsys/service-kit';
import { describeSource, prepareSetup } from '@recsys/trainer';
import { loadFeatures } from './feature-loading.js';
import { loadModelVersion } from '@recsys/model-format';

const usage = `usage: recsys-load-features [--models DIR] [--version N] [--address HOST:PORT] [--history all|train|none] [--batch N]

Loads the data a published model version was trained on into a running feature service: users and
items with every feature the models read (train counts, category, created_at) and the positive
interactions as history and popularity. Idempotent: rows are replaced, events keep stable ids.
  --models DIR     model root written by \`recsys train\` (default: models)
  --version N      the version whose data to load (default: the newest DLRM)
  --address        feature service (default: $FEATURES_ADDRESS or ${defaultAddress('features')})
  --history        which positive interactions become history: all (default), train, none
  --batch N        rows per call (default 1000)`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        models: { type: 'string', default: 'models' },
        version: { type: 'string' },
        address: { type: 'string', default: process.env.FEATURES_ADDRESS ?? defaultAddress('features') },
        history: { type: 'string', default: 'all' },
        batch: { type: 'string', default: '1000' },
        timeout: { type: 'string', default: '30000' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
    return 2;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const history = values.history;
  if (history !== 'all' && history !== 'train' && history !== 'none') {
    console.error(`--history: expected all, train or none, got "${history}"`);
    return 2;
  }
  let batchSize: number;
  try {
    batchSize = numberFlag('batch', values.batch, 'count')!;
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const model = await loadModelVersion(values.models, 'dlrm', values.version);
  const source = model.manifest.data.source;
  // The setup the model was trained on: its train counts (over the fitted rows) are what it reads.
  const { setup } = prepareSetup(source, model.manifest.data.preparation);
  if (fingerprint(setup) !== model.manifest.data.fingerprint) {
    console.error(`the data at ${describeSource(source)} has changed since version ${model.version} was trained; retrain first`);
    return 1;
  }
  await waitForServing(values.address, Number(values.timeout));
  const client = createServiceClient(features.FeatureService, values.address, { defaultTimeoutMs: 60_000 });
  try {
    let last = 0;
    const result = await loadFeatures(client, setup, {
      history,
      batchSize,
      onProgress: (stage, done, total) => {
        if (done === total || Date.now() - last > 2000) {
          last = Date.now();
          console.log(`${stage}: ${done}/${total}`);
        }
      },
    });
    console.log(
      `loaded ${describeSource(source)} (model version ${model.version}): ${result.users} users, ${result.items} items, ` +
        `${result.events} events (${result.duplicates} already recorded), ${result.rejected.length} rejected`,
    );
    for (const r of result.rejected.slice(0, 10)) console.log(`  ${r.kind} ${r.id}: ${r.reason}`);
    return result.rejected.length ? 1 : 0;
  } finally {
    client.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`load failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
