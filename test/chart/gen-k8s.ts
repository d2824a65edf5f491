// `pnpm gen:k8s`: writes the kustomize base (deploy/k8s/base/recsys.yaml) from the chart.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE_FILE, renderBase } from './k8s-base';
import { K8S, kubeTools } from './tools';

writeFileSync(join(K8S, 'base', BASE_FILE), renderBase(kubeTools()));
console.log(`wrote deploy/k8s/base/${BASE_FILE}`);
