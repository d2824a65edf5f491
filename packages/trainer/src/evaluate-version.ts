import { type TrainingSetup, fingerprint } from '@recsys/data';
import { rankingData } from './pipeline.js';
import type { NegativesRecord } from './train/negatives.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { prepareSetup } from './data-source.js';
import type { RankingEvaluation, RetrievalEvaluation } from './eval/report.js';
import { evaluateDlrm, evaluatePreranker, evaluateRetrieval, towerVectors } from './evaluate-models.js';
import { maxDiff } from './export/exporter.js';
import { type ModelManifest, type ModelName, listVersions, readGraph, readManifest } from '@recsys/model-format';
import { OrtRunner } from './graph/ort-runner.js';
import type { TowerVectors } from './train/preranking.js';

export interface VersionEvaluation {
  version: string;
  data: ModelManifest['data'];
  twoTower?: RetrievalEvaluation & { itemVectorsMaxDiff: number };
  dlrm?: RankingEvaluation;
  preranker?: RankingEvaluation;
}

async function session(dir: string, manifest: ModelManifest, graph: string): Promise<OrtRunner> {
  const description = manifest.graphs[graph];
  if (!description) throw new Error(`${dir}: the manifest has no "${graph}" graph`);
  return OrtRunner.create(await readGraph(dir, description), { threads: 1 });
}

/** The newest version that has at least one model. */
export async function latestVersion(root: string): Promise<string | undefined> {
  const all = await Promise.all((['two-tower', 'dlrm', 'preranker'] as ModelName[]).map((n) => listVersions(root, n)));
  return all
    .flat()
    .sort((a, b) => Number(a) - Number(b))
    .pop();
}

/**
 * Evaluates a published version from its files alone: the data is rebuilt from the manifest's source
 * (and must have the same fingerprint), and every score comes from the exported ONNX graphs.
 */
export async function evaluateVersion(root: string, version?: string): Promise<VersionEvaluation> {
  const v = version ?? (await latestVersion(root));
  if (v === undefined) throw new Error(`${root}: no model versions (train first: recsys train --out ${root})`);
  const manifests = await versionManifests(root, v);
  const first = [...manifests.values()][0]!;
  const { setup, fit } = prepareSetup(first.manifest.data.source, first.manifest.data.preparation);
  const fp = fingerprint(setup);
  if (fp !== first.manifest.data.fingerprint)
    throw new Error(
      `the data at ${JSON.stringify(first.manifest.data.source)} has changed since version ${v} was trained (fingerprint ${fp.slice(0, 12)}, manifest ${first.manifest.data.fingerprint.slice(0, 12)})`,
    );
  // The ranking models are evaluated on the rows they were: with the negatives their run sampled, if any.
  const ranker = manifests.get('dlrm') ?? manifests.get('preranker');
  const recorded = ranker?.manifest.training.negatives as NegativesRecord | undefined;
  const sampling = recorded?.source === 'sampled' ? { ratio: recorded.ratio!, sampler: recorded.sampler! } : { ratio: 0 };
  const ranking = rankingData(setup, fit, sampling, Number(ranker?.manifest.training.seed ?? 0)).setup;
  return evaluateVersionOn(root, v, setup, ranking);
}

/** The manifests of a version's models (those it has); at least one. */
async function versionManifests(root: string, v: string): Promise<Map<ModelName, { dir: string; manifest: ModelManifest }>> {
  const manifests = new Map<ModelName, { dir: string; manifest: ModelManifest }>();
  for (const name of ['two-tower', 'dlrm', 'preranker'] as ModelName[]) {
    const dir = join(root, name, v);
    const manifest = await readManifest(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (manifest) manifests.set(name, { dir, manifest });
  }
  if (manifests.size === 0) throw new Error(`${root}: version ${v} has no models`);
  return manifests;
}

/**
 * Evaluates a published version's graphs on given data: `setup` for the two-tower (its test positives), `ranking`
 * for DLRM and the pre-ranker (the same rows, with sampled negatives for implicit feedback). The retrain gate
 * scores the serving version and the candidate so, on the same newest window.
 */
export async function evaluateVersionOn(root: string, v: string, setup: TrainingSetup, ranking: TrainingSetup): Promise<VersionEvaluation> {
  const manifests = await versionManifests(root, v);
  const first = [...manifests.values()][0]!;
  const result: VersionEvaluation = { version: v, data: first.manifest.data };
  const vectorsOf = async (twoTowerVersion: string): Promise<{ vectors: TowerVectors; stored: Float32Array }> => {
    const dir = join(root, 'two-tower', twoTowerVersion);
    const manifest =
      manifests.get('two-tower')?.manifest.version === twoTowerVersion ? manifests.get('two-tower')!.manifest : await readManifest(dir);
    const user = await session(dir, manifest, 'user_tower');
    const item = await session(dir, manifest, 'item_tower');
    try {
      const vectors = await towerVectors(setup, user, item, manifest.featureSpecs.user!, manifest.featureSpecs.item!);
      const raw = await readFile(join(dir, manifest.itemVectors!.file));
      const stored = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      return { vectors, stored };
    } finally {
      await user.release();
      await item.release();
    }
  };
  let towers: { vectors: TowerVectors; stored: Float32Array } | undefined;
  if (manifests.has('two-tower')) {
    towers = await vectorsOf(v);
    result.twoTower = {
      ...(await evaluateRetrieval(setup, towers.vectors)),
      itemVectorsMaxDiff: maxDiff(towers.vectors.items, towers.stored),
    };
  }
  const dlrm = manifests.get('dlrm');
  if (dlrm) {
    const runner = await session(dlrm.dir, dlrm.manifest, 'model');
    result.dlrm = await evaluateDlrm(ranking, runner, dlrm.manifest.featureSpecs.model!).finally(() => runner.release());
  }
  const pre = manifests.get('preranker');
  if (pre) {
    const ttVersion = pre.manifest.dependsOn?.['two-tower'] ?? v;
    const vectors = ttVersion === v && towers ? towers.vectors : (await vectorsOf(ttVersion)).vectors;
    const runner = await session(pre.dir, pre.manifest, 'model');
    result.preranker = await evaluatePreranker(ranking, runner, pre.manifest.featureSpecs.model!, vectors).finally(() => runner.release());
  }
  return result;
}
