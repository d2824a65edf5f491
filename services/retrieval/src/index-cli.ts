#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { features } from '@recsys/contracts';
import { numberFlag, UsageError } from '@recsys/data';
import { createServiceClient, defaultAddress } from '@recsys/service-kit';
import { DEFAULT_HNSW_PARAMS, GRAPH_QUANTIZATIONS, type GraphQuantization, type IndexTarget } from '@recsys/vector-index';
import { buildIndexVersion } from './index-builder.js';
import { DEFAULT_QUERY_SAMPLE } from './query-sample.js';

const usage = `usage: recsys-index build --models DIR [--version N] (--index-dir DIR | --qdrant URL --collection NAME [--qdrant-api-key KEY])
                         [--features HOST:PORT | --no-payload] [--batch N] [--query-sample N]
                         [--quantization ${GRAPH_QUANTIZATIONS.join('|')}]

Publishes a new index version (the next whole number at the target) from a two-tower version's item vectors
(--version, default the newest under DIR/two-tower/). Item categories and creation times, which retrieval
filters on, come from the feature service (--features, default $FEATURES_ADDRESS or ${defaultAddress('features')}), read
--batch ids per call (default 1000); items it does not know are indexed without them. --no-payload skips it.
The graph (embedded, or Qdrant's over each point's query-aware vector) is built in the query-aware space of
--query-sample users (default 4096, 0 for none) embedded by the user tower from their features and history in the
feature service (see the vector-index README). --quantization is the scalar kind of the embedded graph's vectors
(default ${DEFAULT_HNSW_PARAMS.quantization}; results are re-scored from the float32 vectors either way).
The retrieval service picks the new version up and serves it with that two-tower version's user tower.
Exit codes: 0 published, 2 bad flags, 1 the build failed.`;

interface Parsed {
  modelsDir: string;
  modelVersion: string | undefined;
  target: IndexTarget;
  features: string | undefined;
  batch: number;
  querySample: number;
  quantization: GraphQuantization | undefined;
}

function parseFlags(argv: string[]): Parsed | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        models: { type: 'string' },
        version: { type: 'string' },
        'index-dir': { type: 'string' },
        qdrant: { type: 'string' },
        collection: { type: 'string' },
        'qdrant-api-key': { type: 'string' },
        features: { type: 'string' },
        'no-payload': { type: 'boolean', default: false },
        batch: { type: 'string', default: '1000' },
        'query-sample': { type: 'string', default: String(DEFAULT_QUERY_SAMPLE) },
        quantization: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length !== 1 || positionals[0] !== 'build') {
    throw new UsageError(
      positionals.length === 0 ? 'a command is required: build' : `unknown command "${positionals.join(' ')}"; expected build`,
    );
  }
  if (!values.models) throw new UsageError('--models: required (the trainer output root)');
  if (values.version !== undefined && !/^\d+$/.test(values.version))
    throw new UsageError(`--version: expected a whole number, got "${values.version}"`);
  const dir = values['index-dir'];
  const qdrant = values.qdrant;
  if (dir !== undefined && qdrant !== undefined) throw new UsageError('--index-dir and --qdrant: give one, not both');
  let target: IndexTarget;
  if (dir !== undefined) {
    if (dir === '') throw new UsageError('--index-dir: must not be empty');
    target = { kind: 'embedded', root: dir };
  } else if (qdrant !== undefined) {
    if (!/^https?:\/\/\S+$/.test(qdrant)) throw new UsageError(`--qdrant: expected an http:// or https:// URL, got "${qdrant}"`);
    if (!values.collection) throw new UsageError('--collection: required with --qdrant');
    const apiKey = values['qdrant-api-key'] ?? process.env.QDRANT_API_KEY;
    target = { kind: 'qdrant', url: qdrant, collection: values.collection, ...(apiKey ? { apiKey } : {}) };
  } else {
    throw new UsageError('--index-dir or --qdrant: one is required');
  }
  if (values['no-payload'] && values.features !== undefined) throw new UsageError('--features and --no-payload: give one, not both');
  const address = values['no-payload'] ? undefined : (values.features ?? process.env.FEATURES_ADDRESS ?? defaultAddress('features'));
  if (address !== undefined && !/^[^\s:]+:\d{1,5}$/.test(address)) throw new UsageError(`--features: expected HOST:PORT, got "${address}"`);
  const batch = numberFlag('batch', values.batch, 'count', 100_000)!;
  const querySample = numberFlag('query-sample', values['query-sample'], 'whole', 1_000_000)!;
  const quantization = values.quantization as GraphQuantization | undefined;
  if (quantization !== undefined && !GRAPH_QUANTIZATIONS.includes(quantization))
    throw new UsageError(`--quantization: expected one of ${GRAPH_QUANTIZATIONS.join(', ')}, got "${quantization}"`);
  return { modelsDir: values.models, modelVersion: values.version, target, features: address, batch, querySample, quantization };
}

async function main(): Promise<number> {
  let flags: Parsed | 'help';
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`recsys-index: ${error.message}\n\n${usage}`);
    return 2;
  }
  if (flags === 'help') {
    console.log(usage);
    return 0;
  }
  const client = flags.features ? createServiceClient(features.FeatureService, flags.features, { defaultTimeoutMs: 30_000 }) : undefined;
  try {
    const payloadReader = client && {
      batchGetItemFeatures: async (request: { itemIds: string[] }) => {
        try {
          return await client.batchGetItemFeatures(request);
        } catch (error) {
          throw new Error(
            `reading item payload from the feature service at ${flags.features} failed (${error instanceof Error ? error.message : String(error)}); ` +
              'start it, point --features at it, or pass --no-payload',
          );
        }
      },
    };
    const result = await buildIndexVersion({
      modelsDir: flags.modelsDir,
      modelVersion: flags.modelVersion,
      target: flags.target,
      payloadReader,
      payloadBatch: flags.batch,
      ...(client ? { queryReader: client } : {}),
      querySample: flags.querySample,
      ...(flags.quantization !== undefined ? { hnsw: { quantization: flags.quantization } } : {}),
      log: (line) => console.log(line),
    });
    const { info, seconds } = result;
    const where = flags.target.kind === 'embedded' ? flags.target.root : `${flags.target.url} (alias ${flags.target.collection})`;
    console.log(
      `index version ${info.version} published to ${where}: ${info.size} items, dimension ${info.dimension}, ${info.metric}, ` +
        `two-tower ${info.modelVersion} (read ${seconds.read.toFixed(1)} s, payload ${seconds.payload.toFixed(1)} s, ` +
        `query sample ${seconds.querySample.toFixed(1)} s, build ${seconds.publish.toFixed(1)} s)`,
    );
    return 0;
  } finally {
    client?.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`recsys-index: build failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
