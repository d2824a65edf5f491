import { resolve } from 'node:path';
import { numberFlag, UsageError } from '@recsys/data';
import { modeFlag, parseFlags, redisUrlFlag } from './cli-args.js';
import type { EvaluatePipelineOptions } from './evaluate-pipeline.js';
import { DEFAULT_FUNNEL_SETTINGS, type FunnelSetting, settingLabel } from './funnel.js';

export const evaluateUsage = `usage: recsys-evaluate-pipeline [options]

The funnel evaluation: for each funnel setting (candidates retrieved / pre-ranked / ranked), the share of each held-out
user's test positives that survives retrieval, pre-ranking, ranking and the final k, and the pipeline's latency at that
setting, measured through the running services (the gateway's gRPC API, each request carrying its funnel sizes).
Writes <out>/funnel.json and <out>/funnel.html (the curves as inline SVG).

Without --gateway it starts the whole pipeline itself (as recsys-up does, on free ports, the feature service loaded with
the train split only so that the held-out positives stay unseen) and stops it at the end.

  --settings LIST       funnel settings, R/P/K comma-separated, each retrieved >= pre-ranked >= ranked >= k
                        (default ${DEFAULT_FUNNEL_SETTINGS.map(settingLabel).join(',')}; the first is the gateway's default)
  --k N                 items per answer (default 20, the gateway's DEFAULT_K)
  --users N             held-out users asked, an even sample (default 300)
  --budget-ms N         each request's latency budget (default 1000, the gateway's default BUDGET_MAX_MS)
  --warm-up N           unmeasured requests per setting first (default 20)
  --out DIR             report directory (default: <work-dir>/report)
  --work-dir DIR        models, index and logs when starting (default: $RECSYS_WORK_DIR/funnel or .recsys/funnel)
  --models DIR          the served models (their manifest names the data and its split); when starting and absent,
                        the default synthetic data is trained into <work-dir>/models (cached)
  --redis-url URL       when starting: the feature store in Redis (default: in memory)
  --mode MODE           when starting: split (default) or all-in-one
  --gateway HOST:PORT   evaluate a running gateway instead (needs --models: the version it serves)
  --features HOST:PORT  with --gateway: its feature service, checked to hold no held-out positive as history
  --api-key KEY         with --gateway: a key for a gateway with API keys (default: $RECSYS_API_KEY)`;

export type EvaluateCommand = { help: true } | { help: false; options: Omit<EvaluatePipelineOptions, 'log'> };

const ADDRESS = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

function address(flag: string, text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (!ADDRESS.test(text)) throw new UsageError(`--${flag}: expected HOST:PORT (the gRPC address), got "${text}"`);
  return text;
}

/** "1000/300/100,500/150/60": every setting well formed and in order; at least one, no repeats. */
export function parseSettings(text: string, k: number): FunnelSetting[] {
  const settings: FunnelSetting[] = [];
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === ''))
    throw new UsageError(`--settings: expected R/P/K settings separated by commas, got "${text}"`);
  for (const part of parts) {
    const m = /^(\d+)\/(\d+)\/(\d+)$/.exec(part);
    if (!m) throw new UsageError(`--settings: "${part}" is not R/P/K (candidates retrieved/pre-ranked/ranked, e.g. 1000/300/100)`);
    const [retrieved, preRanked, ranked] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (!(retrieved >= preRanked && preRanked >= ranked))
      throw new UsageError(
        `--settings: "${part}": each stage keeps at most what the one before it passed on (retrieved >= pre-ranked >= ranked)`,
      );
    if (ranked < k) throw new UsageError(`--settings: "${part}": ranked (${ranked}) must be at least k (${k})`);
    if (settings.some((s) => settingLabel(s) === part)) throw new UsageError(`--settings: "${part}" is given twice`);
    settings.push({ retrieved, preRanked, ranked });
  }
  return settings;
}

/** The evaluation's options from its flags and environment; `repoRoot` anchors the default work directory. */
export function parseEvaluateArgs(argv: string[], env: NodeJS.ProcessEnv, repoRoot: string): EvaluateCommand {
  const text = parseFlags(argv, {
    settings: { type: 'string' },
    k: { type: 'string' },
    users: { type: 'string' },
    'budget-ms': { type: 'string' },
    'warm-up': { type: 'string' },
    out: { type: 'string' },
    'work-dir': { type: 'string' },
    models: { type: 'string' },
    'redis-url': { type: 'string' },
    mode: { type: 'string' },
    gateway: { type: 'string' },
    features: { type: 'string' },
    'api-key': { type: 'string' },
  });
  if (text === undefined) return { help: true };
  const k = numberFlag('k', text('k'), 'count') ?? 20;
  const settings = text('settings') === undefined ? [...DEFAULT_FUNNEL_SETTINGS] : parseSettings(text('settings')!, k);
  if (text('settings') === undefined && k > DEFAULT_FUNNEL_SETTINGS[DEFAULT_FUNNEL_SETTINGS.length - 1]!.ranked)
    throw new UsageError(`--k: ${k} is wider than the default settings' narrowest ranked count; give --settings too`);
  const users = numberFlag('users', text('users'), 'count') ?? 300;
  const budgetMs = numberFlag('budget-ms', text('budget-ms'), 'count') ?? 1000;
  const warmUp = numberFlag('warm-up', text('warm-up'), 'whole') ?? 20;
  const gateway = address('gateway', text('gateway'));
  const features = address('features', text('features'));
  const models = text('models');
  const redisUrl = redisUrlFlag(text('redis-url'));
  const mode = modeFlag(text('mode'));
  if (gateway !== undefined) {
    if (models === undefined)
      throw new UsageError('--gateway: needs --models DIR, the models that gateway serves (their data holds the held-out split)');
    for (const flag of ['redis-url', 'mode', 'work-dir'])
      if (text(flag) !== undefined)
        throw new UsageError(`--${flag}: only when this command starts the services; leave it out with --gateway`);
  } else {
    if (features !== undefined) throw new UsageError('--features: only with --gateway (a started pipeline checks its own feature service)');
    if (text('api-key') !== undefined) throw new UsageError('--api-key: only with --gateway (a started pipeline runs without keys)');
  }
  const workDir = resolve(
    text('work-dir') ?? (env.RECSYS_WORK_DIR ? resolve(env.RECSYS_WORK_DIR, 'funnel') : resolve(repoRoot, '.recsys', 'funnel')),
  );
  const apiKey = text('api-key') ?? (gateway !== undefined && env.RECSYS_API_KEY ? env.RECSYS_API_KEY : undefined);
  return {
    help: false,
    options: {
      settings,
      k,
      users,
      budgetMs,
      warmUp,
      out: resolve(text('out') ?? resolve(workDir, 'report')),
      ...(gateway !== undefined ? { gateway } : { workDir }),
      ...(features !== undefined ? { features } : {}),
      ...(apiKey !== undefined ? { apiKey } : {}),
      ...(models !== undefined ? { modelsDir: resolve(models) } : {}),
      ...(redisUrl !== undefined ? { redisUrl } : {}),
      ...(mode !== undefined ? { mode } : {}),
    },
  };
}
