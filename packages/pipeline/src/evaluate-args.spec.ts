import { UsageError } from '@recsys/data';
import { parseEvaluateArgs, parseSettings } from './evaluate-args.js';
import { DEFAULT_FUNNEL_SETTINGS } from './funnel.js';

const root = '/repo';

function optionsOf(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const command = parseEvaluateArgs(argv, env, root);
  if (command.help) throw new Error('expected options, got help');
  return command.options;
}

function problem(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseEvaluateArgs(argv, env, root);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`no error for ${argv.join(' ')}`);
}

describe('recsys-evaluate-pipeline flags', () => {
  it('defaults: starts its own services in .recsys/funnel, the default settings, k 20, 300 users', () => {
    expect(parseEvaluateArgs(['--help'], {}, root)).toEqual({ help: true });
    expect(optionsOf([])).toEqual({
      settings: [...DEFAULT_FUNNEL_SETTINGS],
      k: 20,
      users: 300,
      budgetMs: 1000,
      warmUp: 20,
      workDir: '/repo/.recsys/funnel',
      out: '/repo/.recsys/funnel/report',
    });
    expect(optionsOf([], { RECSYS_WORK_DIR: '/data' }).workDir).toBe('/data/funnel');
  });

  it('reads settings, sizes, a running gateway and its key', () => {
    expect(
      optionsOf(
        [
          '--gateway',
          '127.0.0.1:15050',
          '--features',
          'localhost:15051',
          '--models',
          'm',
          '--settings',
          '1000/300/100, 200/60/20',
          '--k',
          '10',
        ],
        { RECSYS_API_KEY: 'k'.repeat(16) },
      ),
    ).toEqual({
      settings: [
        { retrieved: 1000, preRanked: 300, ranked: 100 },
        { retrieved: 200, preRanked: 60, ranked: 20 },
      ],
      k: 10,
      users: 300,
      budgetMs: 1000,
      warmUp: 20,
      gateway: '127.0.0.1:15050',
      features: 'localhost:15051',
      apiKey: 'k'.repeat(16),
      modelsDir: `${process.cwd()}/m`,
      out: '/repo/.recsys/funnel/report',
    });
  });

  it.each<[string[], string]>([
    [['--users', '0'], '--users: expected a whole number >= 1, got "0"'],
    [['--k', 'ten'], '--k: expected a whole number >= 1, got "ten"'],
    [['--budget-ms=-5'], '--budget-ms: expected a whole number >= 1, got "-5"'],
    [['--settings', '1000/300'], '--settings: "1000/300" is not R/P/K'],
    [['--settings', '100/300/50'], '--settings: "100/300/50": each stage keeps at most what the one before it passed on'],
    [['--settings', '100/50/10'], '--settings: "100/50/10": ranked (10) must be at least k (20)'],
    [['--settings', '100/50/20,100/50/20'], '--settings: "100/50/20" is given twice'],
    [['--settings', '100/50/20,'], '--settings: expected R/P/K settings separated by commas'],
    [['--k', '30'], "--k: 30 is wider than the default settings' narrowest ranked count; give --settings too"],
    [['--gateway', 'localhost'], '--gateway: expected HOST:PORT (the gRPC address), got "localhost"'],
    [['--gateway', 'localhost:15050'], '--gateway: needs --models DIR'],
    [
      ['--gateway', 'localhost:15050', '--models', 'm', '--redis-url', 'redis://r:1'],
      '--redis-url: only when this command starts the services',
    ],
    [['--features', 'localhost:15051'], '--features: only with --gateway'],
    [['--api-key', 'x'], '--api-key: only with --gateway'],
    [['--redis-url', 'http://r:1'], '--redis-url: expected a redis:// or rediss:// URL, got "http://r:1"'],
    [['--mode', 'cluster'], '--mode: expected split or all-in-one, got "cluster"'],
    [['--bogus'], "Unknown option '--bogus'"],
  ])('%j is refused: %s', (argv, message) => {
    expect(problem(argv)).toContain(message);
  });

  it('parses settings on their own', () => {
    expect(parseSettings('50/20/10', 10)).toEqual([{ retrieved: 50, preRanked: 20, ranked: 10 }]);
  });
});
