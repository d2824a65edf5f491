import { execFileSync } from 'node:child_process';
import { builtEntry } from '@recsys/service-kit';

/** Runs `code` in a fresh node process (the built packages: jest's module registry is not node's) and parses its last line. */
function inFreshProcess(code: string): Record<string, boolean> {
  const out = execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, boolean>;
}

describe('onnxruntime-node is loaded with the first session, not with the package', () => {
  it('a process that imports the stage layer and the model runtime but makes no session has not loaded it; onnxRuntime() loads it', () => {
    const stage = builtEntry('packages/stage/dist/index.js');
    const create = builtEntry('packages/serving/dist/ort-session-create.js');
    const result = inFreshProcess(`
      const loaded = () => Object.keys(require.cache).some((path) => path.includes('onnxruntime-node'));
      require(${JSON.stringify(stage)});
      const before = loaded();
      const ort = require(${JSON.stringify(create)}).onnxRuntime();
      console.log(JSON.stringify({ before, after: loaded(), hasSession: typeof ort.InferenceSession.create === 'function' }));
    `);
    expect(result).toEqual({ before: false, after: true, hasSession: true });
  });
});
