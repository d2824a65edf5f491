import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ModelManifest, type ModelName, listVersions, readGraph, readManifest, sha256 } from './manifest.js';

/** One published model version read from disk: its manifest and every graph's bytes, checksums verified. */
export interface ModelVersion {
  name: ModelName;
  version: string;
  dir: string;
  manifest: ModelManifest;
  graphs: Record<string, Uint8Array>;
}

/** A model version that cannot be served, with the file or field at fault. */
export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError';
}

/** The newest published version of a model under `root` (`<root>/<name>/<integer>/`), if any. */
export async function latestModelVersion(root: string, name: ModelName): Promise<string | undefined> {
  const versions = await listVersions(root, name);
  return versions[versions.length - 1];
}

/**
 * Reads `<root>/<name>/<version>/` (the newest when no version is given): the manifest must name this
 * model and version, and every graph file must match its checksum.
 */
export async function loadModelVersion(root: string, name: ModelName, version?: string): Promise<ModelVersion> {
  const chosen = version ?? (await latestModelVersion(root, name));
  if (chosen === undefined) throw new ModelLoadError(`no published version of ${name} under ${join(root, name)}`);
  const dir = join(root, name, chosen);
  let manifest: ModelManifest;
  try {
    manifest = await readManifest(dir);
  } catch (error) {
    throw new ModelLoadError(`${join(dir, 'manifest.json')}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (manifest.name !== name) throw new ModelLoadError(`${dir}: the manifest is for "${manifest.name}", expected "${name}"`);
  if (manifest.version !== chosen) throw new ModelLoadError(`${dir}: the manifest says version "${manifest.version}"`);
  const graphs: Record<string, Uint8Array> = {};
  for (const [role, graph] of Object.entries(manifest.graphs)) {
    try {
      graphs[role] = await readGraph(dir, graph);
    } catch (error) {
      throw new ModelLoadError(error instanceof Error ? error.message : String(error));
    }
  }
  return { name, version: chosen, dir, manifest, graphs };
}

/** The catalogue's item-tower vectors a two-tower version exported: ids in row order, count × dim floats. */
export interface ItemVectors {
  ids: string[];
  vectors: Float32Array;
  dim: number;
}

export async function readItemVectors(model: Pick<ModelVersion, 'dir' | 'manifest'>): Promise<ItemVectors> {
  const spec = model.manifest.itemVectors;
  if (!spec) throw new ModelLoadError(`${model.dir}: the manifest lists no item vectors`);
  const bytes = await readFile(join(model.dir, spec.file));
  if (sha256(bytes) !== spec.sha256) throw new ModelLoadError(`${join(model.dir, spec.file)}: checksum differs from the manifest`);
  if (bytes.byteLength !== spec.count * spec.dim * 4) {
    throw new ModelLoadError(`${join(model.dir, spec.file)}: ${bytes.byteLength} bytes for ${spec.count} × ${spec.dim} floats`);
  }
  const ids = (await readFile(join(model.dir, spec.idsFile), 'utf8')).split('\n').filter((line) => line !== '');
  if (ids.length !== spec.count) throw new ModelLoadError(`${join(model.dir, spec.idsFile)}: ${ids.length} ids for ${spec.count} vectors`);
  // Copy into an aligned buffer: Buffer slices may start at any byte offset.
  const vectors = new Float32Array(spec.count * spec.dim);
  new Uint8Array(vectors.buffer).set(bytes);
  return { ids, vectors, dim: spec.dim };
}
