import { join } from 'node:path';
import { latestModelVersion } from '@recsys/serving';
import { type DataSource, MODEL_NAMES, readManifest } from '@recsys/trainer';
import type { TwoTowerIdentity } from './state-file.js';

/** JSON with object keys sorted, so two equal values give one string whatever order their keys were written in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function sameSource(a: DataSource, b: DataSource): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

export type ModelsDecision = { train: false; version: string } | { train: true; reason: string };

/**
 * Whether the newest published models were trained on `source`. Only the newest counts: the services serve the
 * newest version, so an older matching one would not be what runs.
 */
export async function modelsDecision(modelsDir: string, source: DataSource): Promise<ModelsDecision> {
  const versions = await Promise.all(MODEL_NAMES.map((name) => latestModelVersion(modelsDir, name)));
  const missing = MODEL_NAMES.filter((_, k) => versions[k] === undefined);
  if (missing.length > 0) return { train: true, reason: `no trained ${missing.join(', ')} in ${modelsDir}` };
  const version = versions[0]!;
  if (versions.some((v) => v !== version)) {
    return { train: true, reason: `the newest versions differ (${MODEL_NAMES.map((n, k) => `${n} ${versions[k]}`).join(', ')})` };
  }
  for (const name of MODEL_NAMES) {
    const manifest = await readManifest(join(modelsDir, name, version));
    if (!sameSource(manifest.data.source, source)) return { train: true, reason: `version ${version} was trained on other data` };
  }
  return { train: false, version };
}

/** The newest two-tower version of a model root, as the index cache records it. */
export async function twoTowerIdentity(modelsDir: string): Promise<TwoTowerIdentity> {
  const version = await latestModelVersion(modelsDir, 'two-tower');
  if (version === undefined) throw new Error(`no two-tower model in ${modelsDir}: train first`);
  const manifest = await readManifest(join(modelsDir, 'two-tower', version));
  return { modelsDir, version, createdAt: manifest.createdAt };
}

/** The index built last is reused when it is still the newest one and holds the two-tower version that serves now. */
export function indexIsCurrent(
  recorded: { version: string; twoTower: TwoTowerIdentity } | undefined,
  newestIndex: string | undefined,
  current: TwoTowerIdentity,
): boolean {
  return (
    recorded !== undefined &&
    newestIndex !== undefined &&
    recorded.version === newestIndex &&
    canonicalJson(recorded.twoTower) === canonicalJson(current)
  );
}
