import { resolve } from 'node:path';
import { numberFlag, UsageError } from '@recsys/data';
import { parseArgs } from 'node:util';
import type { PipelineOptions } from './pipeline.js';
import { PIPELINE_MODES, SERVICE_NAMES, type PipelineMode, type ServiceName } from './services.js';

export const usage = `usage: recsys-up [options]

Runs the whole recommender on this machine: makes the synthetic dataset (dated to end today), trains every model
(skipped when the newest trained version holds the same data), starts the feature service and loads it, builds the
vector index (skipped when it holds the newest two-tower), then starts retrieval, pre-ranking, ranking, re-ranking
and the gateway, each as its own process on 127.0.0.1, and waits until all are healthy. Ctrl-C stops them.

  --mode MODE           split (default): each service its own process, as on Kubernetes; all-in-one: every service in
                        one process, the stages calling each other in-process (same code and contracts, no HTTP/2)
  --work-dir DIR        models, indexes, logs and state (default: $RECSYS_WORK_DIR or .recsys at the repository root)
  --models DIR          serve these trained models (<DIR>/{two-tower,dlrm,preranker}/<version>/) instead of training
  --redis-url URL       feature store in Redis (default: $REDIS_URL; unset: in memory)
  --skip NAMES          leave services out, comma-separated: retrieval, preranking, ranking, reranking, gateway
  --users N --items N   synthetic data size (default 2000 users, 1000 items)
  --PORT-port N         a service's port, 0 for a free one: --features-port (15051), --retrieval-port (15052),
                        --preranking-port (15053), --ranking-port (15054), --reranking-port (15055),
                        --gateway-port (gRPC, 15050), --http-port (the gateway's REST API, 8080)

The gateway runs with AUTH_DISABLED=true unless API_KEYS (name:key,...) or API_KEYS_FILE is set in the environment.
Logs of every service go to <work-dir>/logs/<service>.log; warnings and errors are shown here.`;

export type UpCommand = { help: true } | { help: false; options: Omit<PipelineOptions, 'log'> };

const PORT_FLAGS = [...SERVICE_NAMES, 'http'] as const;

function portValue(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new UsageError(`--${flag}: expected a port from 0 to 65535, got "${text}"`);
  return port;
}

/** --redis-url, checked; undefined when absent. */
export function redisUrlFlag(text: string | undefined): string | undefined {
  if (text !== undefined && !/^rediss?:\/\/\S+$/.test(text))
    throw new UsageError(`--redis-url: expected a redis:// or rediss:// URL, got "${text}"`);
  return text;
}

/** --mode, checked; undefined when absent. */
export function modeFlag(text: string | undefined): PipelineMode | undefined {
  if (text !== undefined && !PIPELINE_MODES.includes(text as PipelineMode))
    throw new UsageError(`--mode: expected ${PIPELINE_MODES.join(' or ')}, got "${text}"`);
  return text as PipelineMode | undefined;
}

/**
 * The flags of a command (node:util parseArgs, its errors as UsageError, --help / -h added): each flag's text by name,
 * or undefined when help was asked.
 */
export function parseFlags(
  argv: string[],
  options: Record<string, { type: 'string' }>,
): ((flag: string) => string | undefined) | undefined {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } } }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return undefined;
  return (flag) => values[flag] as string | undefined;
}

/** The launcher's options from its flags and environment; `repoRoot` anchors the default work directory. */
export function parseUpArgs(argv: string[], env: NodeJS.ProcessEnv, repoRoot: string): UpCommand {
  const text = parseFlags(argv, {
    mode: { type: 'string' },
    'work-dir': { type: 'string' },
    models: { type: 'string' },
    'redis-url': { type: 'string' },
    skip: { type: 'string' },
    users: { type: 'string' },
    items: { type: 'string' },
    ...Object.fromEntries(PORT_FLAGS.map((name) => [`${name}-port`, { type: 'string' as const }])),
  });
  if (text === undefined) return { help: true };
  const workDir = text('work-dir') ?? (env.RECSYS_WORK_DIR || resolve(repoRoot, '.recsys'));
  if (workDir === '') throw new UsageError('--work-dir: must not be empty');
  const redisUrl = redisUrlFlag(text('redis-url') ?? (env.REDIS_URL || undefined));
  const skip = (text('skip') ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of skip) {
    if (!SERVICE_NAMES.includes(name as ServiceName) || name === 'features')
      throw new UsageError(`--skip: "${name}" is not a service that can be left out (retrieval, preranking, ranking, reranking, gateway)`);
  }
  const ports: NonNullable<PipelineOptions['ports']> = {};
  for (const name of PORT_FLAGS) {
    const port = portValue(`${name}-port`, text(`${name}-port`));
    if (port !== undefined) ports[name] = port;
  }
  const synthetic: NonNullable<PipelineOptions['synthetic']> = {};
  const users = numberFlag('users', text('users'), 'count');
  const items = numberFlag('items', text('items'), 'count');
  if (users !== undefined) synthetic.users = users;
  if (items !== undefined) synthetic.items = items;
  const mode = modeFlag((text('mode') ?? env.RECSYS_MODE) || undefined);
  if (mode === 'all-in-one' && skip.length > 0) throw new UsageError('--skip: the all-in-one mode runs every service; leave --skip out');
  const models = text('models');
  if (models !== undefined && (users !== undefined || items !== undefined))
    throw new UsageError('--models and --users/--items: trained models come with their data; give one or the other');
  return {
    help: false,
    options: {
      workDir: resolve(workDir),
      ...(mode !== undefined ? { mode } : {}),
      ...(models !== undefined ? { modelsDir: resolve(models) } : {}),
      ...(redisUrl !== undefined ? { redisUrl } : {}),
      ...(skip.length > 0 ? { skip: skip as ServiceName[] } : {}),
      ...(Object.keys(ports).length > 0 ? { ports } : {}),
      ...(Object.keys(synthetic).length > 0 ? { synthetic } : {}),
    },
  };
}
