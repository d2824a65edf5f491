#!/usr/bin/env node
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SingleBar, Presets } from 'cli-progress';
import { toJson } from '@bufbuild/protobuf';
import { features } from '@recsys/contracts';
import { numberFlag } from '@recsys/data';
import { createServiceClient, defaultAddress, waitForServing } from '@recsys/service-kit';
import { loadFile, type Rejection } from './bulk-loader.js';

const usage = `usage: recsys-features COMMAND [--address HOST:PORT]   (default address: $FEATURES_ADDRESS or ${defaultAddress('features')})
  load [--users FILE] [--items FILE] [--batch N] [--rejects FILE]
  user USER_ID               a user's features and recent history, as JSON
  items ITEM_ID...           items' features, as JSON
  popular [--limit N]        the most popular items now, as JSON
  wait [--timeout MS]        waits until the service reports SERVING

Loads users and items from JSONL (.jsonl/.ndjson) or CSV (.csv) files into a running feature service.
  JSONL: {"user_id": "u1", "features": {"age": 31, "genres": ["drama"]}}
         {"item_id": "i1", "category": "books", "created_at": "2026-01-01", "features": {...}}
  CSV:   a header with user_id or item_id (and category, created_at for items); other columns are
         features, typed by a suffix: name (categorical), name:num, name:multi (a|b), name:vec (0.1|0.2).
Rows that fail are counted with their reasons; --rejects writes them all as JSONL.`;

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      users: { type: 'string' },
      items: { type: 'string' },
      address: { type: 'string', default: process.env.FEATURES_ADDRESS ?? defaultAddress('features') },
      batch: { type: 'string', default: '1000' },
      rejects: { type: 'string' },
      limit: { type: 'string', default: '10' },
      timeout: { type: 'string', default: '15000' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...args] = positionals;
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (command === 'wait') {
    await waitForServing(values.address, Number(values.timeout));
    return 0;
  }
  if (command === 'user' || command === 'items' || command === 'popular') {
    const client = createServiceClient(features.FeatureService, values.address, { defaultTimeoutMs: 10_000 });
    try {
      const print = (json: unknown) => console.log(JSON.stringify(json, null, 2));
      if (command === 'user' && args.length === 1) {
        print(toJson(features.GetUserFeaturesResponseSchema, await client.getUserFeatures({ userId: args[0]! })));
      } else if (command === 'items' && args.length > 0) {
        print(toJson(features.BatchGetItemFeaturesResponseSchema, await client.batchGetItemFeatures({ itemIds: args })));
      } else if (command === 'popular' && args.length === 0) {
        print(toJson(features.GetPopularItemsResponseSchema, await client.getPopularItems({ limit: Number(values.limit) })));
      } else {
        console.error(usage);
        return 2;
      }
      return 0;
    } finally {
      client.close();
    }
  }
  if (command !== 'load' || (!values.users && !values.items)) {
    console.error(usage);
    return 2;
  }
  let batchSize: number;
  try {
    batchSize = numberFlag('batch', values.batch, 'count')!;
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const client = createServiceClient(features.FeatureService, values.address, { defaultTimeoutMs: 60_000 });
  const allRejected: (Rejection & { file: string })[] = [];
  try {
    for (const [kind, file] of [
      ['users', values.users],
      ['items', values.items],
    ] as const) {
      if (!file) continue;
      const bar = new SingleBar(
        {
          format: `${kind} |{bar}| {percentage}% | {stored} stored | {rejected} rejected | {eta_formatted} left`,
          noTTYOutput: true,
          notTTYSchedule: 2000,
        },
        Presets.shades_classic,
      );
      bar.start(1, 0, { stored: 0, rejected: 0 });
      const result = await loadFile(client, kind, file, {
        batchSize,
        onProgress: (p) => {
          bar.setTotal(Math.max(1, p.totalBytes));
          bar.update(p.bytesRead, { stored: p.stored, rejected: p.rejected });
        },
      });
      bar.stop();
      console.log(`${kind}: ${result.stored} stored, ${result.rejected.length} rejected (${file})`);
      for (const r of result.rejected.slice(0, 10)) console.log(`  line ${r.line}${r.id ? ` (${r.id})` : ''}: ${r.reason}`);
      if (result.rejected.length > 10)
        console.log(`  … ${result.rejected.length - 10} more${values.rejects ? ` in ${values.rejects}` : ' (use --rejects FILE for all)'}`);
      allRejected.push(...result.rejected.map((r) => ({ ...r, file })));
    }
  } finally {
    client.close();
  }
  if (values.rejects)
    writeFileSync(values.rejects, allRejected.map((r) => JSON.stringify(r)).join('\n') + (allRejected.length ? '\n' : ''));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`load failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
