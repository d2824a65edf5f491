import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FeatureSpec, SetupOptions, SyntheticOptions, UserHistoryOptions } from '@recsys/data';
import type { InputDescription } from './inputs.js';

/** Where a training run's data comes from: recorded in every manifest, so a version's data can be rebuilt. */
export type DataSource =
  | { kind: 'ml100k'; dir: string; itemSide?: boolean }
  | { kind: 'synthetic'; options: SyntheticOptions; setup?: SetupOptions }
  | { kind: 'files'; dir: string; positiveThreshold?: number; setup?: SetupOptions };

/** What a training run built on its data, recorded in the manifest so serving and evaluation rebuild the same. */
export interface SetupPreparation {
  history?: UserHistoryOptions;
  /** Fit on train minus the validation slice (PROTOCOL.md's rule; the latest train rows for a time split). */
  validation?: boolean;
  /**
   * The preset whose defaults the run started from (`recsys train --strong`) and the data kind they were
   * chosen for: the strong history differs by data kind, each chosen on validation slices only
   * (test/bench/results/strong-choices.md). Every option is recorded on its own as well.
   */
  preset?: 'strong (ml100k)' | 'strong (synthetic and files data)';
}

export const MANIFEST_FORMAT = 'recsys.model.v1';
export type ModelName = 'two-tower' | 'dlrm' | 'preranker';

export interface GraphDescription {
  file: string;
  sha256: string;
  bytes: number;
  inputs: InputDescription[];
  outputs: { name: string; dtype: 'float32'; shape: (number | string)[] }[];
  /** Largest |trainer forward − onnxruntime on this file| over a check batch, measured at export. */
  parityMaxAbsDiff: number;
}

export interface ModelManifest {
  format: typeof MANIFEST_FORMAT;
  name: ModelName;
  version: string;
  createdAt: string;
  opset: number;
  /** ONNX graphs by role: 'model' (dlrm, preranker) or 'user_tower' and 'item_tower'. */
  graphs: Record<string, GraphDescription>;
  /** Input features: one spec ('model'), or one per tower. */
  featureSpecs: Record<string, FeatureSpec>;
  /** Model shape (dims, widths, temperature). */
  config: Record<string, unknown>;
  training: {
    seed: number;
    epochs: number;
    batchSize: number;
    lr: number;
    examples: number;
    seconds: number;
    examplesPerS: number;
  } & Record<string, unknown>;
  metrics: Record<string, number>;
  data: {
    source: DataSource;
    name: string;
    fingerprint: string;
    users: number;
    items: number;
    trainRows: number;
    testRows: number;
    /** User history and validation slice the run built on the data (absent: neither). */
    preparation?: SetupPreparation;
  };
  /** Two-tower: the item tower's output for the whole catalogue, for the index builder. */
  itemVectors?: { file: string; idsFile: string; count: number; dim: number; dtype: 'float32'; sha256: string };
  /** Models this one reads the outputs of (the pre-ranker reads the two-tower's vectors). */
  dependsOn?: Partial<Record<ModelName, string>>;
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Version directories are positive integers; the next run gets one more than any model has. */
export async function nextVersion(root: string): Promise<string> {
  let max = 0;
  for (const name of ['two-tower', 'dlrm', 'preranker'] satisfies ModelName[]) {
    const entries = await readdir(join(root, name)).catch(() => [] as string[]);
    for (const e of entries) if (/^\d+$/.test(e)) max = Math.max(max, Number(e));
  }
  return String(max + 1);
}

export async function listVersions(root: string, name: ModelName): Promise<string[]> {
  const entries = await readdir(join(root, name)).catch(() => [] as string[]);
  return entries.filter((e) => /^\d+$/.test(e)).sort((a, b) => Number(a) - Number(b));
}

/**
 * A model version being written: files go to a hidden staging directory that is renamed into
 * place only when complete, so a watcher never sees half a model.
 */
export class VersionWriter {
  private constructor(
    readonly finalDir: string,
    readonly dir: string,
  ) {}

  static async open(root: string, name: ModelName, version: string): Promise<VersionWriter> {
    const finalDir = join(root, name, version);
    const dir = join(root, name, `.staging-${version}-${process.pid}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return new VersionWriter(finalDir, dir);
  }

  async write(file: string, bytes: Uint8Array | string): Promise<{ sha256: string; bytes: number }> {
    await writeFile(join(this.dir, file), bytes);
    return { sha256: sha256(bytes), bytes: typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength };
  }

  async commit(manifest: ModelManifest): Promise<string> {
    await writeFile(join(this.dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(this.dir, this.finalDir);
    return this.finalDir;
  }

  async abort(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

export async function readManifest(dir: string): Promise<ModelManifest> {
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
  if (manifest.format !== MANIFEST_FORMAT) throw new Error(`${dir}: manifest format "${manifest.format}", expected "${MANIFEST_FORMAT}"`);
  return manifest;
}

/** Reads a graph file and checks it against the manifest's checksum. */
export async function readGraph(dir: string, graph: GraphDescription): Promise<Uint8Array> {
  const bytes = new Uint8Array(await readFile(join(dir, graph.file)));
  if (sha256(bytes) !== graph.sha256) throw new Error(`${join(dir, graph.file)}: checksum differs from the manifest`);
  return bytes;
}
