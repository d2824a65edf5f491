import { trace } from '@opentelemetry/api';
import { startTracing } from '@recsys/service-kit';
import { type TrainedModels, trainedModels } from '@recsys/testing';
import { zeroFeeds } from './feeds.js';
import { loadModelVersion, ModelLoadError } from '@recsys/model-format';
import { FeedError, ModelSession } from './onnx-session.js';
import { cp, readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function recordingLogger() {
  const lines: { level: string; fields: object; message: string }[] = [];
  return {
    lines,
    info: (fields: object, message: string) => lines.push({ level: 'info', fields, message }),
    warn: (fields: object, message: string) => lines.push({ level: 'warn', fields, message }),
  };
}

describe('ModelSession: the one owner of onnxruntime sessions', () => {
  let models: TrainedModels;
  beforeAll(async () => {
    models = await trainedModels();
  }, 180_000);

  async function dlrm() {
    const version = await loadModelVersion(models.root, 'dlrm');
    return { version, graph: version.manifest.graphs.model!, bytes: version.graphs.model! };
  }

  it('falls back from CUDA to CPU where CUDA cannot load, and says which provider runs', async () => {
    const { graph, bytes } = await dlrm();
    const logger = recordingLogger();
    const session = await ModelSession.create(bytes, graph.inputs, { label: 'dlrm', providers: ['cuda', 'cpu'], logger });
    try {
      // This machine has no CUDA libraries; a GPU image would report cuda here.
      expect(session.provider).toBe('cpu');
      expect(logger.lines.some((l) => l.level === 'warn' && l.message.includes('cuda is unavailable'))).toBe(true);
      expect(logger.lines.at(-1)).toMatchObject({ level: 'info', message: 'dlrm runs on cpu' });
      const out = await session.run(zeroFeeds(graph.inputs, 3));
      expect(out[session.outputNames[0]!]!.length).toBe(3);
    } finally {
      await session.release();
    }
  });

  it('refuses feeds that do not match the manifest, naming the input', async () => {
    const { graph, bytes } = await dlrm();
    const session = await ModelSession.create(bytes, graph.inputs, { label: 'dlrm' });
    try {
      const feeds = zeroFeeds(graph.inputs, 2);
      const [first, second] = graph.inputs;
      const missing = { ...feeds };
      delete missing[first!.name];
      expect(() => session.checkFeeds(missing)).toThrow(new FeedError(`dlrm: input "${first!.name}" is missing`));
      expect(() => session.checkFeeds({ ...feeds, extra: { data: new Float32Array(2), shape: [2] } })).toThrow(/"extra" is not an input/);
      const wrongType = {
        ...feeds,
        [first!.name]: { data: new Float32Array(feeds[first!.name]!.data.length), shape: feeds[first!.name]!.shape },
      };
      if (first!.dtype === 'int32') expect(() => session.checkFeeds(wrongType)).toThrow(/is float32, the model needs int32/);
      const t = feeds[second!.name]!;
      const shorter = { ...feeds, [second!.name]: { data: t.data.slice(0, t.data.length / 2), shape: [1, ...t.shape.slice(1)] } };
      await expect(session.run(shorter)).rejects.toThrow(/has batch 1, others 2/);
    } finally {
      await session.release();
    }
    await expect(session.run(zeroFeeds(graph.inputs, 1))).rejects.toThrow(/released/);
  });

  it('refuses a model whose graph inputs differ from its manifest, and a file whose checksum differs', async () => {
    const { graph, bytes } = await dlrm();
    await expect(ModelSession.create(bytes, graph.inputs.slice(1), { label: 'dlrm' })).rejects.toThrow(/differ from the manifest/);
    const root = await mkdtemp(join(tmpdir(), 'serving-'));
    try {
      await cp(join(models.root, 'dlrm'), join(root, 'dlrm'), { recursive: true });
      const file = join(root, 'dlrm', '1', graph.file);
      const original = await readFile(file);
      await writeFile(file, original.subarray(0, original.length - 10));
      await expect(loadModelVersion(root, 'dlrm')).rejects.toThrow(ModelLoadError);
      await expect(loadModelVersion(root, 'dlrm')).rejects.toThrow(/checksum differs from the manifest/);
      await expect(loadModelVersion(root, 'preranker')).rejects.toThrow(/no published version of preranker/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('makes a span per run inside a recorded span, and none outside one (warm-ups, tracing off)', async () => {
    const { graph, bytes } = await dlrm();
    const session = await ModelSession.create(bytes, graph.inputs, { label: 'dlrm v1' });
    // Ended spans as the SDK hands them to an exporter (the span exporter interface, kept in this test).
    const ended: { name: string; parentSpanContext?: { spanId: string }; attributes: Record<string, unknown> }[] = [];
    const exporter = {
      export: (spans: typeof ended, done: (result: { code: number }) => void) => (ended.push(...spans), done({ code: 0 })),
      shutdown: async () => undefined,
    };
    try {
      await session.run(zeroFeeds(graph.inputs, 2));
      const tracing = startTracing({ serviceName: 'serving-test', env: {}, exporter: exporter as never })!;
      try {
        await session.run(zeroFeeds(graph.inputs, 2));
        expect(ended).toEqual([]);
        const parent = await trace.getTracer('test').startActiveSpan('stage call', async (span) => {
          await session.run(zeroFeeds(graph.inputs, 3));
          span.end();
          return span.spanContext().spanId;
        });
        await tracing.flush();
        const runs = ended.filter((s) => s.name === 'model run dlrm v1');
        expect(runs).toHaveLength(1);
        expect(runs[0]!.parentSpanContext?.spanId).toBe(parent);
        expect(runs[0]!.attributes).toEqual({ 'recsys.model': 'dlrm v1', 'recsys.model.provider': 'cpu', 'recsys.model.rows': 3 });
      } finally {
        await tracing.release();
      }
    } finally {
      await session.release();
    }
  });
});
