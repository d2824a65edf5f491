import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { K8sObject } from './tools';

/** The npm module of a kind's model: kubernetes-models for built-in kinds, its KEDA and Prometheus Operator packages for CRDs. */
export function modelModule(object: Pick<K8sObject, 'apiVersion' | 'kind'>): string {
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object.apiVersion];
  if (group === 'keda.sh') return `@kubernetes-models/keda/keda.sh/${version}/${object.kind}`;
  if (group === 'monitoring.coreos.com') return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}/${object.kind}`;
  return `kubernetes-models/${group ? `${group}/` : ''}${version}/${object.kind}`;
}

type ModelClass = new (data: unknown) => { validate(): void };

/** Validates an object against its kind's JSON schema (the Kubernetes OpenAPI schema); throws naming the object. */
export function validateObject(object: K8sObject): void {
  const module = modelModule(object);
  let model: ModelClass;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the module is chosen by the object's kind
    model = (require(module) as Record<string, ModelClass>)[object.kind]!;
  } catch {
    throw new Error(`${object.kind} ${object.metadata?.name}: no model for ${object.apiVersion} (${module})`);
  }
  try {
    new model(object).validate();
  } catch (error) {
    throw new Error(`${object.kind} ${object.metadata?.name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * The schemas accept unknown fields; the models' TypeScript interfaces do not: every object becomes an object
 * literal typed by its kind's interface, so tsc reports any field the API does not have (excess property
 * checks) and any value of the wrong type. Returns tsc's diagnostics, empty when every object type-checks.
 */
export function typeCheckObjects(objects: ReadonlyArray<{ object: K8sObject; source: string }>): string[] {
  // Inside test/, so that the models resolve from test/node_modules.
  const dir = mkdtempSync(join(__dirname, '.types-'));
  try {
    const imports = new Map<string, string>();
    const lines: string[] = [];
    objects.forEach(({ object, source }, i) => {
      const module = modelModule(object);
      let alias = imports.get(module);
      if (!alias) {
        alias = `I${imports.size}`;
        imports.set(module, alias);
      }
      lines.push(`// ${source}: ${object.kind} ${object.metadata.name}`, `export const o${i}: ${alias} = ${JSON.stringify(object)};`);
    });
    const header = [...imports].map(([module, alias]) => {
      const kind = module.slice(module.lastIndexOf('/') + 1);
      return `import type { I${kind} as ${alias} } from ${JSON.stringify(module)};`;
    });
    const file = join(dir, 'rendered.ts');
    writeFileSync(file, `${header.join('\n')}\n${lines.join('\n')}\n`);
    const compilerOptions = {
      noEmit: true,
      strict: true,
      skipLibCheck: true,
      module: 'node16',
      moduleResolution: 'node16',
      target: 'es2022',
      types: [],
    };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['rendered.ts'] }));
    const tsc = require.resolve('typescript/bin/tsc');
    const result = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
    if (result.status === 0) return [];
    return `${result.stdout}${result.stderr}`
      .split('\n')
      .filter((line) => line.includes('error TS'))
      .map((line) => {
        const at = /rendered\.ts\((\d+),/.exec(line);
        const context = at ? lines[Number(at[1]) - header.length - 2] : undefined;
        return `${context ?? ''} ${line.replace(/^.*rendered\.ts/, 'rendered.ts')}`.trim();
      });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
