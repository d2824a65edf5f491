import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ModelManifest, sha256 } from '@recsys/model-format';
import { trainedModels } from '@recsys/testing';
import { zeroFeeds } from './feeds.js';
import { type ModelReloadEvent, ModelWatcher, type ModelWatcherOptions, warmUpSession } from './model-watcher.js';
import type { ModelVersion } from '@recsys/model-format';
import { ModelSession } from './onnx-session.js';

/** A served version as the spec sees it: its session, and whether the watcher released it. */
interface Served {
  version: string;
  session: ModelSession;
  released: boolean;
}

async function load(model: ModelVersion): Promise<Served> {
  const graph = model.manifest.graphs.model!;
  const session = await ModelSession.create(model.graphs.model!, graph.inputs, { label: `dlrm v${model.version}`, providers: ['cpu'] });
  try {
    await warmUpSession(session, graph);
  } catch (error) {
    await session.release();
    throw error;
  }
  return { version: model.version, session, released: false };
}

async function release(served: Served): Promise<void> {
  served.released = true;
  await served.session.release();
}

describe('ModelWatcher (real trained models on disk)', () => {
  let source: string;
  let root: string;
  const logs: string[] = [];
  const logger = {
    info: (_: object, m: string) => logs.push(`info ${m}`),
    warn: (_: object, m: string) => logs.push(`warn ${m}`),
    error: (_: object, m: string) => logs.push(`error ${m}`),
  };

  beforeAll(async () => {
    const models = await trainedModels();
    source = join(models.root, 'dlrm', models.version);
  }, 180_000);

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'recsys-watch-'));
    logs.length = 0;
    publish('1');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** Publishes a copy of the trained DLRM as `version`, as the trainer does: a staging directory renamed into place. */
  function publish(version: string, change?: (dir: string, manifest: ModelManifest) => void): void {
    const staging = join(root, 'dlrm', `.staging-${version}`);
    cpSync(source, staging, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(staging, 'manifest.json'), 'utf8')) as ModelManifest;
    manifest.version = version;
    change?.(staging, manifest);
    writeFileSync(join(staging, 'manifest.json'), JSON.stringify(manifest));
    renameSync(staging, join(root, 'dlrm', version));
  }

  function start(extra: Partial<ModelWatcherOptions<Served>> = {}) {
    const events: ModelReloadEvent[] = [];
    let waiting: ((event: ModelReloadEvent) => void) | undefined;
    const watcher = ModelWatcher.start<Served>({
      root,
      name: 'dlrm',
      load,
      release,
      pollIntervalMs: 0,
      debounceMs: 20,
      logger,
      onEvent: (event) => {
        events.push(event);
        waiting?.(event);
      },
      ...extra,
    });
    const nextEvent = () => new Promise<ModelReloadEvent>((resolve) => (waiting = resolve));
    return { watcher, events, nextEvent };
  }

  it('serves the newest version, swaps in one published later (file watch), and releases the old one after its last lease', async () => {
    publish('2');
    const { watcher: starting, nextEvent } = start();
    const watcher = await starting;
    try {
      expect(watcher.version).toBe('2');
      const lease = watcher.acquire();
      const old = lease.model;
      const swapped = nextEvent();
      publish('3');
      expect(await swapped).toMatchObject({ outcome: 'loaded', version: '3', previous: '2' });
      expect(watcher.version).toBe('3');
      // The request that started on v2 still runs on it.
      expect(old.released).toBe(false);
      const out = await old.session.run(zeroFeeds(old.session.inputs, 3));
      expect(Object.values(out)[0]!.length).toBe(3);
      lease.release();
      lease.release();
      await new Promise((r) => setImmediate(r));
      expect(old.released).toBe(true);
      const now = watcher.acquire();
      expect(now.model.released).toBe(false);
      now.release();
    } finally {
      await watcher.close();
    }
  });

  it('finds new versions by polling when file events are off', async () => {
    const { watcher: starting, nextEvent } = start({ watch: false, pollIntervalMs: 30 });
    const watcher = await starting;
    try {
      const swapped = nextEvent();
      publish('2');
      expect(await swapped).toMatchObject({ outcome: 'loaded', version: '2' });
      expect(watcher.version).toBe('2');
    } finally {
      await watcher.close();
    }
  });

  const broken: [string, (dir: string, manifest: ModelManifest) => void, string][] = [
    [
      'a truncated model.onnx under the old checksum',
      (dir) => writeFileSync(join(dir, 'model.onnx'), readFileSync(join(dir, 'model.onnx')).subarray(0, 1000)),
      'model.onnx: checksum differs from the manifest',
    ],
    [
      'garbage under a matching checksum',
      (dir, manifest) => {
        const garbage = Buffer.from('not an onnx model at all');
        writeFileSync(join(dir, 'model.onnx'), garbage);
        manifest.graphs.model!.sha256 = sha256(garbage);
      },
      'no execution provider could load the model',
    ],
    ['the manifest of another model', (_dir, manifest) => (manifest.name = 'preranker'), 'the manifest is for "preranker"'],
    [
      'graph inputs that differ from the manifest',
      (_dir, manifest) => (manifest.graphs.model!.inputs[0]!.name = 'renamed'),
      "differ from the manifest's",
    ],
    [
      'an output the graph does not have',
      (_dir, manifest) => (manifest.graphs.model!.outputs[0]!.name = 'logit'),
      'the graph has no output "logit"',
    ],
  ];

  it.each(broken)('refuses %s and keeps serving the old version', async (_what, change, problem) => {
    const { watcher: starting, nextEvent } = start();
    const watcher = await starting;
    try {
      const lease = watcher.acquire();
      const refused = nextEvent();
      publish('2', change);
      const event = await refused;
      expect(event).toMatchObject({ outcome: 'refused', version: '2' });
      expect(event.outcome === 'refused' && event.error).toContain(problem);
      expect(logs.some((l) => l.startsWith('error dlrm v2 refused') && l.includes('v1 keeps serving'))).toBe(true);
      expect(watcher.version).toBe('1');
      expect(lease.model.released).toBe(false);
      lease.release();
      // A refused version is not retried; the next good one loads.
      const next = nextEvent();
      publish('3');
      expect(await next).toMatchObject({ outcome: 'loaded', version: '3', previous: '1' });
    } finally {
      await watcher.close();
    }
  });

  it('starts on the newest version that loads, and fails naming the model when none does', async () => {
    publish('2', (dir) => writeFileSync(join(dir, 'model.onnx'), 'x'));
    const { watcher: starting, events } = start();
    const watcher = await starting;
    expect(watcher.version).toBe('1');
    const lease = watcher.acquire();
    lease.release();
    expect(events.map((e) => [e.outcome, e.version])).toEqual([
      ['refused', '2'],
      ['loaded', '1'],
    ]);
    await watcher.close();
    expect(lease.model.released).toBe(true);

    rmSync(join(root, 'dlrm', '1'), { recursive: true });
    await expect(start().watcher).rejects.toThrow(/no version of dlrm under .* could be loaded \(refused: 2\)/);
    rmSync(join(root, 'dlrm', '2'), { recursive: true });
    await expect(start().watcher).rejects.toThrow('no published version of dlrm');
  });
});
