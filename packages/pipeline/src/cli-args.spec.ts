import { UsageError } from '@recsys/data';
import { parseUpArgs } from './cli-args.js';

const root = '/repo';

function optionsOf(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const command = parseUpArgs(argv, env, root);
  if (command.help) throw new Error('expected options, got help');
  return command.options;
}

describe('recsys-up flags', () => {
  it('defaults to .recsys at the repository root, in memory, every service on its default port', () => {
    expect(parseUpArgs([], {}, root)).toEqual({ help: false, options: { workDir: '/repo/.recsys' } });
    expect(parseUpArgs(['--help'], {}, root)).toEqual({ help: true });
  });

  it('takes the work directory and Redis from the environment, flags first', () => {
    expect(optionsOf([], { RECSYS_WORK_DIR: '/data/up', REDIS_URL: 'redis://127.0.0.1:6380' })).toEqual({
      workDir: '/data/up',
      redisUrl: 'redis://127.0.0.1:6380',
    });
    expect(
      parseUpArgs(['--work-dir', '/flag', '--redis-url', 'rediss://r:1'], { RECSYS_WORK_DIR: '/env', REDIS_URL: 'redis://e:1' }, root),
    ).toEqual({ help: false, options: { workDir: '/flag', redisUrl: 'rediss://r:1' } });
  });

  it('reads ports, services to leave out, model roots and data size', () => {
    const parsed = parseUpArgs(
      ['--features-port', '0', '--gateway-port', '9000', '--http-port', '8081', '--skip', 'gateway, reranking', '--users', '300'],
      {},
      root,
    );
    expect(parsed).toEqual({
      help: false,
      options: {
        workDir: '/repo/.recsys',
        ports: { features: 0, gateway: 9000, http: 8081 },
        skip: ['gateway', 'reranking'],
        synthetic: { users: 300 },
      },
    });
    expect(optionsOf(['--models', '/m'])).toMatchObject({ modelsDir: '/m' });
  });

  it('names the bad flag', () => {
    const fails = (argv: string[], message: string) => {
      expect(() => parseUpArgs(argv, {}, root)).toThrow(UsageError);
      expect(() => parseUpArgs(argv, {}, root)).toThrow(message);
    };
    fails(['--ranking-port', '70000'], '--ranking-port: expected a port from 0 to 65535, got "70000"');
    fails(['--http-port', 'eighty'], '--http-port: expected a port from 0 to 65535');
    fails(['--skip', 'features'], '--skip: "features" is not a service that can be left out');
    fails(['--skip', 'cache'], '--skip: "cache"');
    fails(['--users', '0'], '--users: expected a whole number >= 1, got "0"');
    fails(['--redis-url', 'localhost:6379'], '--redis-url: expected a redis:// or rediss:// URL');
    fails(['--models', '/m', '--items', '10'], '--models and --users/--items');
    fails(['--shards', '3'], "'--shards'");
    fails(['--mode', 'monolith'], '--mode: expected split or all-in-one, got "monolith"');
    fails(['--mode', 'all-in-one', '--skip', 'gateway'], '--skip: the all-in-one mode runs every service');
  });

  it('runs every service in one process with --mode all-in-one (or RECSYS_MODE)', () => {
    expect(optionsOf(['--mode', 'all-in-one'])).toMatchObject({ mode: 'all-in-one' });
    expect(parseUpArgs([], { RECSYS_MODE: 'all-in-one' }, root)).toMatchObject({ options: { mode: 'all-in-one' } });
    expect(optionsOf(['--mode', 'split'])).toMatchObject({ mode: 'split' });
    expect(optionsOf([])).not.toHaveProperty('mode');
  });
});
