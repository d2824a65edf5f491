// `pnpm test:chart`: lints and renders the Helm chart for every values file under charts/recsys/ci (and its
// defaults), validates every rendered object against the Kubernetes API schemas and type-checks it against its
// TypeScript model (unknown fields), checks what matters of the render, checks that each stage's rendered
// environment is accepted by that stage's own configuration loader, that bad values fail with the expected
// message, and that the kustomize base and overlays under deploy/k8s equal the chart's render for the same
// settings. The last line of output is one JSON object.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadFeaturesConfig } from '@recsys/features';
import { loadGatewayConfig } from '@recsys/gateway';
import { loadPrerankingConfig } from '@recsys/preranking';
import { loadRankingConfig } from '@recsys/ranking';
import { loadRerankingConfig } from '@recsys/reranking';
import { loadRetrievalConfig } from '@recsys/retrieval';
import { typeCheckObjects, validateObject } from './models';
import { CHART, helmTemplate, K8S, kubeTools, parseObjects, ROOT, run, runFailing, type K8sObject, type Tools } from './tools';
import { renderBase, BASE_FILE } from './k8s-base';
import { CHART_REDIS_CONFIG } from '@recsys/testing';

/** The offline jobs' components: each calls what its flags name, and only when the chart renders it. */
const JOB_COMPONENTS = ['load-features', 'build-index', 'retrain'];
const STAGES = ['gateway', 'features', 'retrieval', 'preranking', 'ranking', 'reranking'] as const;
type Stage = (typeof STAGES)[number];
/** The stages that load models before they listen: they get a startup probe. */
const MODEL_STAGES: readonly Stage[] = ['retrieval', 'preranking', 'ranking'];

/**
 * Who calls whom, as the code does: the gateway's five clients (services/gateway/src/gateway-app.ts), the
 * feature-service client of retrieval, pre-ranking, ranking and re-ranking (FEATURES_ADDRESS), the feature
 * service's Redis (REDIS_URL), retrieval's Qdrant (INDEX_BACKEND=qdrant), and the offline jobs:
 * recsys-load-features (--address) and recsys-index build (--features, --qdrant). Training reads no service.
 */
function expectedCallGraph(stores: { redis: boolean; qdrant: boolean }): Set<string> {
  const edges = [
    ...['retrieval', 'preranking', 'ranking', 'reranking', 'features'].map((callee) => `gateway->${callee}`),
    ...['retrieval', 'preranking', 'ranking', 'reranking', 'load-features', 'build-index', 'retrain'].map(
      (caller) => `${caller}->features`,
    ),
  ];
  if (stores.redis) edges.push('features->redis');
  if (stores.qdrant) edges.push('retrieval->qdrant', 'build-index->qdrant', 'retrain->qdrant');
  return new Set(edges);
}

interface Case {
  name: string;
  /** Values files after the chart's values.yaml; none: the defaults. */
  files: string[];
}

const CI = join(CHART, 'ci');
const cases: Case[] = [
  { name: 'default', files: [] },
  ...readdirSync(CI)
    .filter((f) => f.endsWith('-values.yaml'))
    .sort()
    .map((f) => ({ name: f.replace(/-values\.yaml$/, ''), files: [join(CI, f)] })),
];

const componentOf = (object: K8sObject) => object.metadata.labels?.['app.kubernetes.io/component'] ?? '';
const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered objects are walked as plain JSON */
type Json = any;

function podSpecOf(object: K8sObject): Json | undefined {
  const o = object as Json;
  switch (object.kind) {
    case 'Deployment':
    case 'StatefulSet':
    case 'Job':
      return o.spec.template.spec;
    case 'CronJob':
      return o.spec.jobTemplate.spec.template.spec;
    case 'Pod':
      return o.spec;
    default:
      return undefined;
  }
}

/** Every workload runs as non-root 10001 with a read-only root filesystem, no privilege escalation, no capabilities, and a /tmp emptyDir. */
function checkSecurity(object: K8sObject): void {
  const spec = podSpecOf(object);
  if (!spec) return;
  const where = `${object.kind} ${object.metadata.name}`;
  assert.equal(spec.securityContext?.runAsNonRoot, true, `${where}: pod runAsNonRoot`);
  assert.equal(spec.securityContext?.runAsUser, 10001, `${where}: pod runAsUser 10001`);
  assert.equal(spec.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${where}: seccomp RuntimeDefault`);
  assert.equal(spec.automountServiceAccountToken, false, `${where}: no service account token`);
  for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
    const c = `${where} container ${container.name}`;
    const sc = container.securityContext ?? {};
    assert.equal(sc.runAsNonRoot, true, `${c}: runAsNonRoot`);
    assert.equal(sc.runAsUser, 10001, `${c}: runAsUser`);
    assert.equal(sc.readOnlyRootFilesystem, true, `${c}: readOnlyRootFilesystem`);
    assert.equal(sc.allowPrivilegeEscalation, false, `${c}: allowPrivilegeEscalation false`);
    assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${c}: drops ALL capabilities`);
    assert.ok(sc.capabilities?.add === undefined, `${c}: adds no capability`);
    const tmp = (container.volumeMounts ?? []).find((m: Json) => m.mountPath === '/tmp');
    assert.ok(tmp, `${c}: /tmp is mounted`);
    assert.ok(spec.volumes.find((v: Json) => v.name === tmp.name)?.emptyDir, `${c}: /tmp is an emptyDir`);
    assert.ok(container.resources?.requests?.memory && container.resources?.limits?.memory, `${c}: memory request and limit`);
  }
}

interface Checked {
  /** Autoscaling on: each stage has exactly one HPA or ScaledObject; off: none. */
  hpaOrScaledObjectPerStage: boolean;
  scaledObjects: number;
  hpas: number;
  pdbPerStage: boolean;
  gpuOnlyWhenEnabled: boolean;
  networkPolicyMatchesCallGraph: boolean;
}

/** What the values of a case select, read back from the merged values helm computed (`helm template --show-only` cannot print values, so read the files). */
function checkRender(name: string, objects: K8sObject[], values: Json): Checked {
  const deployments = new Map(byKind(objects, 'Deployment').map((d) => [componentOf(d), d as Json]));
  const configMaps = new Map(byKind(objects, 'ConfigMap').map((c) => [c.metadata.name, c as Json]));
  assert.deepEqual([...deployments.keys()].sort(), [...STAGES].sort(), `${name}: a Deployment per stage`);

  // Autoscaling: an HPA or a ScaledObject per stage (never both) when enabled, none when off; a PDB per stage.
  const hpas = byKind(objects, 'HorizontalPodAutoscaler').map(componentOf);
  const scaled = byKind(objects, 'ScaledObject').map(componentOf);
  const autoscalingOn = values.defaults?.autoscaling?.enabled !== false;
  let hpaOrScaledObjectPerStage = true;
  for (const stage of STAGES) {
    const count = hpas.filter((c) => c === stage).length + scaled.filter((c) => c === stage).length;
    if (count !== (autoscalingOn ? 1 : 0)) hpaOrScaledObjectPerStage = false;
    assert.equal(count, autoscalingOn ? 1 : 0, `${name}: ${stage} has ${count} HPA/ScaledObject`);
    const replicas = deployments.get(stage).spec.replicas;
    assert.equal(replicas === undefined, autoscalingOn, `${name}: ${stage} replicas are left to the autoscaler exactly when it scales`);
  }
  for (const object of [...byKind(objects, 'HorizontalPodAutoscaler'), ...byKind(objects, 'ScaledObject')] as Json[]) {
    assert.equal(object.spec.scaleTargetRef.name, deployments.get(componentOf(object)).metadata.name, `${name}: scale target`);
  }
  for (const so of byKind(objects, 'ScaledObject') as Json[]) {
    const trigger = so.spec.triggers[0];
    assert.equal(trigger.type, 'prometheus');
    const metric = componentOf(so) === 'ranking' ? 'ranking_queue_depth' : 'grpc_server_in_flight_requests';
    assert.match(trigger.metadata.query, new RegExp(`^sum\\(${metric}\\{namespace="recsys",service="${componentOf(so)}"\\}\\)$`));
  }
  const pdbs = byKind(objects, 'PodDisruptionBudget') as Json[];
  const pdbPerStage = STAGES.every((stage) => pdbs.filter((p) => componentOf(p) === stage).length === 1);
  assert.ok(pdbPerStage, `${name}: a PDB per stage`);
  for (const pdb of pdbs) {
    assert.deepEqual(pdb.spec.selector.matchLabels, deployments.get(componentOf(pdb)).spec.selector.matchLabels, `${name}: PDB selector`);
  }

  // Probes, drain, config checksum, the Service each stage is reached by.
  for (const [stage, deployment] of deployments) {
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    const grpcPort = container.ports.find((p: Json) => p.name === 'grpc').containerPort;
    assert.equal(typeof grpcPort, 'number');
    for (const probe of ['readinessProbe', 'livenessProbe', ...(MODEL_STAGES.includes(stage as Stage) ? ['startupProbe'] : [])]) {
      assert.equal(container[probe]?.grpc?.port, grpcPort, `${name}: ${stage} ${probe} is gRPC on the numeric port ${grpcPort}`);
    }
    if (!MODEL_STAGES.includes(stage as Stage)) assert.equal(container.startupProbe, undefined, `${name}: ${stage} needs no startup probe`);
    const config = configMaps.get(container.envFrom[0].configMapRef.name).data;
    assert.equal(config.GRPC_PORT, String(grpcPort), `${name}: ${stage} listens where it is probed`);
    const drainMs = Number(config.SHUTDOWN_TIMEOUT_MS);
    const preStop = container.lifecycle.preStop.exec.command.join(' ');
    const preStopMs = Number(/setTimeout\(\(\) => \{\}, (\d+)\)/.exec(preStop)?.[1]);
    assert.ok(preStopMs > 0, `${name}: ${stage} preStop sleeps`);
    assert.ok(pod.terminationGracePeriodSeconds * 1000 > preStopMs + drainMs, `${name}: ${stage} grace period above preStop + drain`);
    assert.ok(Number(config.GRPC_MAX_CONNECTION_AGE_MS) > 0, `${name}: ${stage} sets a maximum connection age`);
    assert.match(deployment.spec.template.metadata.annotations['checksum/config'], /^[0-9a-f]{64}$/);
    assert.ok(pod.topologySpreadConstraints?.length > 0, `${name}: ${stage} spreads over zones and nodes`);
    const service = objects.find((o) => o.kind === 'Service' && componentOf(o) === stage) as Json;
    assert.equal(
      service.spec.clusterIP === 'None',
      stage !== 'gateway',
      `${name}: ${stage}'s Service is headless exactly when the gateway calls it`,
    );
    for (const [key, value] of Object.entries(config as Record<string, string>)) {
      if (!key.endsWith('_ADDRESS')) continue;
      const callee = key.slice(0, -'_ADDRESS'.length).toLowerCase();
      const target = objects.find((o) => o.kind === 'Service' && componentOf(o) === callee) as Json;
      assert.equal(
        value,
        `dns:///${target.metadata.name}.recsys.svc.cluster.local:${target.spec.ports[0].port}`,
        `${name}: ${stage} ${key} is the headless name of ${callee}`,
      );
    }
  }

  // GPU: only ranking, only when enabled, and then everything it needs.
  const gpuEnabled = values.gpu?.enabled === true;
  let gpuOnlyWhenEnabled = true;
  for (const object of objects) {
    const spec = podSpecOf(object);
    if (!spec) continue;
    for (const container of spec.containers) {
      const gpus = container.resources?.limits?.['nvidia.com/gpu'];
      const isRanking = object.kind === 'Deployment' && componentOf(object) === 'ranking';
      if ((gpus !== undefined) !== (gpuEnabled && isRanking)) gpuOnlyWhenEnabled = false;
      if (gpuEnabled && isRanking) {
        assert.equal(gpus, 1, `${name}: one GPU`);
        assert.ok(container.image.startsWith('recsys-gpu:'), `${name}: the GPU image`);
        assert.deepEqual(container.env, [{ name: 'RANKING_EXECUTION_PROVIDERS', value: 'cuda,cpu' }]);
        assert.equal(spec.nodeSelector['nvidia.com/gpu.present'], 'true');
        assert.ok(spec.tolerations.some((t: Json) => t.key === 'nvidia.com/gpu'));
        assert.equal(spec.runtimeClassName, values.gpu.runtimeClassName || undefined);
      } else {
        assert.ok(!container.image.startsWith('recsys-gpu'), `${name}: ${object.metadata.name} on the CPU image`);
        assert.equal(spec.runtimeClassName, undefined);
      }
    }
  }
  assert.ok(gpuOnlyWhenEnabled, `${name}: nvidia.com/gpu only on ranking and only with gpu.enabled`);

  // NetworkPolicy: who may reach each component's service port, read back from the policies, equals who calls it.
  const policies = byKind(objects, 'NetworkPolicy') as Json[];
  const allowed = new Set<string>();
  let gatewayOpen = false;
  for (const policy of policies) {
    const target = policy.spec.podSelector.matchLabels['app.kubernetes.io/component'];
    for (const rule of policy.spec.ingress) {
      const ports = rule.ports.map((p: Json) => p.port);
      if (ports.includes('metrics')) {
        assert.deepEqual(ports, ['metrics'], `${name}: the metrics rule opens only the metrics port`);
        continue;
      }
      if (target === 'gateway') {
        gatewayOpen = rule.from === undefined || (values.networkPolicy?.gatewayFrom?.length ?? 0) > 0;
        continue;
      }
      assert.ok(rule.from?.length > 0, `${name}: ${target} accepts only listed callers`);
      for (const peer of rule.from) {
        assert.deepEqual(Object.keys(peer), ['podSelector'], `${name}: ${target} is reached from pods of this release only`);
        assert.equal(peer.podSelector.matchLabels['app.kubernetes.io/instance'], 'recsys');
        allowed.add(`${peer.podSelector.matchLabels['app.kubernetes.io/component']}->${target}`);
      }
    }
  }
  const policyTargets = new Set(policies.map((p) => p.spec.podSelector.matchLabels['app.kubernetes.io/component']));
  for (const stage of STAGES) assert.ok(policyTargets.has(stage), `${name}: ${stage} has a NetworkPolicy`);
  const stores = { redis: values.redis?.enabled !== false, qdrant: values.index?.backend === 'qdrant' && values.qdrant?.enabled === true };
  const expected = expectedCallGraph(stores);
  // The call graph the rendered configuration gives the code: addresses in ConfigMaps, URLs in env, job flags.
  const configured = new Set<string>();
  for (const [stage, deployment] of deployments) {
    const config = configMaps.get(deployment.spec.template.spec.containers[0].envFrom[0].configMapRef.name).data;
    for (const key of Object.keys(config)) if (key.endsWith('_ADDRESS')) configured.add(`${stage}->${key.slice(0, -8).toLowerCase()}`);
    if (config.QDRANT_URL?.includes('-qdrant.')) configured.add(`${stage}->qdrant`);
    const env = deployment.spec.template.spec.containers[0].env ?? [];
    if (env.some((e: Json) => e.name === 'REDIS_URL' && e.value?.includes('-redis.'))) configured.add(`${stage}->redis`);
  }
  for (const job of [...byKind(objects, 'Job'), ...byKind(objects, 'CronJob')]) {
    const args: string[] = podSpecOf(job).containers[0].args;
    for (const flag of ['--address', '--features']) if (args.includes(flag)) configured.add(`${componentOf(job)}->features`);
    if (args[args.indexOf('--qdrant') + 1]?.includes('-qdrant.')) configured.add(`${componentOf(job)}->qdrant`);
  }
  const jobs = new Set([...byKind(objects, 'Job'), ...byKind(objects, 'CronJob')].map(componentOf));
  const expectedHere = new Set(
    [...expected].filter((edge) => !JOB_COMPONENTS.includes(edge.split('->')[0]!) || jobs.has(edge.split('->')[0]!)),
  );
  const allowedHere = new Set(
    [...allowed].filter((edge) => !JOB_COMPONENTS.includes(edge.split('->')[0]!) || jobs.has(edge.split('->')[0]!)),
  );
  const networkPolicyMatchesCallGraph = gatewayOpen && sameSet(allowedHere, expectedHere) && sameSet(configured, expectedHere);
  assert.ok(gatewayOpen, `${name}: the gateway accepts callers from outside the release`);
  assert.deepEqual([...allowedHere].sort(), [...expectedHere].sort(), `${name}: NetworkPolicy edges equal the call graph`);
  assert.deepEqual([...configured].sort(), [...expectedHere].sort(), `${name}: configured addresses equal the call graph`);

  // Offline jobs: a CronJob never overlaps itself; every job runs the one image.
  for (const cron of byKind(objects, 'CronJob') as Json[]) assert.equal(cron.spec.concurrencyPolicy, 'Forbid');
  if (values.jobs?.train?.schedule)
    assert.ok(
      byKind(objects, 'CronJob').some((c) => componentOf(c) === 'train'),
      `${name}: a training CronJob`,
    );
  // Retraining is a CronJob or nothing: never an install hook.
  const retrain = [...byKind(objects, 'Job'), ...byKind(objects, 'CronJob')].filter((j) => componentOf(j) === 'retrain');
  if (values.jobs?.retrain?.enabled) {
    assert.deepEqual(
      retrain.map((j) => j.kind),
      ['CronJob'],
      `${name}: a retraining CronJob`,
    );
    const args: string[] = podSpecOf(retrain[0]!).containers[0].args;
    assert.equal(args[0], 'retrain', `${name}: the retrain CronJob runs recsys retrain`);
    for (const flag of ['--models', '--features', '--since', '--until']) assert.ok(args.includes(flag), `${name}: retrain ${flag}`);
  } else assert.deepEqual(retrain, [], `${name}: no retraining unless enabled`);
  for (const job of [...byKind(objects, 'Job'), ...byKind(objects, 'CronJob')]) {
    assert.match(podSpecOf(job).containers[0].image, /^recsys[:@]/, `${name}: ${job.metadata.name} uses the recsys image`);
  }
  // Stores: single-replica StatefulSets with probes; Redis persists with an append-only file.
  for (const set of byKind(objects, 'StatefulSet') as Json[]) {
    assert.equal(set.spec.replicas, 1);
    const container = set.spec.template.spec.containers[0];
    assert.ok(container.readinessProbe && container.livenessProbe, `${name}: ${set.metadata.name} probes`);
    if (componentOf(set) === 'redis') {
      const conf = configMaps.get(set.spec.template.spec.volumes.find((v: Json) => v.name === 'config').configMap.name).data['redis.conf'];
      // The persistence the tests' Redis (packages/testing) runs with: test:resilience restarts it and expects the data back.
      const lines = conf.split('\n').map((line: string) => line.trim());
      for (const [directive, value] of CHART_REDIS_CONFIG)
        assert.ok(lines.includes(`${directive} ${value}`), `${name}: redis.conf has "${directive} ${value}" as the tests' Redis does`);
    }
  }
  for (const object of objects) checkSecurity(object);

  return {
    hpaOrScaledObjectPerStage,
    scaledObjects: scaled.length,
    hpas: hpas.length,
    pdbPerStage,
    gpuOnlyWhenEnabled,
    networkPolicyMatchesCallGraph,
  };
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

/**
 * Each stage's configuration loader accepts the environment the chart gives it: the ConfigMap, with what comes
 * from Secrets and mounts stood in by files of the same shape (a key directory, the rules file).
 */
function checkStageConfigs(name: string, objects: K8sObject[]): void {
  const scratch = mkdtempSync(join(tmpdir(), 'recsys-chart-env-'));
  try {
    const keys = join(scratch, 'api-keys');
    mkdirSync(keys);
    writeFileSync(join(keys, 'default'), 'k'.repeat(32));
    const loaders: Record<Stage, (env: NodeJS.ProcessEnv) => unknown> = {
      gateway: loadGatewayConfig,
      features: loadFeaturesConfig,
      retrieval: loadRetrievalConfig,
      preranking: loadPrerankingConfig,
      ranking: loadRankingConfig,
      reranking: loadRerankingConfig,
    };
    for (const deployment of byKind(objects, 'Deployment') as Json[]) {
      const stage = componentOf(deployment) as Stage;
      const container = deployment.spec.template.spec.containers[0];
      const data = {
        ...(objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === container.envFrom[0].configMapRef.name) as Json).data,
      };
      const env: Record<string, string> = { ...data };
      for (const entry of container.env ?? []) {
        env[entry.name] = entry.value ?? (entry.name === 'REDIS_URL' ? 'redis://redis.example:6379' : 'from-a-secret');
      }
      if (env.REDIS_URL) env.REDIS_URL = env.REDIS_URL.replace('$(REDIS_PASSWORD)', 'secret');
      if (env.API_KEYS_FILE) env.API_KEYS_FILE = keys;
      if (env.RERANKING_RULES_FILE) {
        const rules = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-reranking-rules')) as Json;
        env.RERANKING_RULES_FILE = join(scratch, 'rules.yaml');
        writeFileSync(env.RERANKING_RULES_FILE, rules.data['rules.yaml']);
      }
      // The tracing variables are read by the OpenTelemetry SDK, not by the stage's loader.
      try {
        loaders[stage](env);
      } catch (error) {
        throw new Error(`${name}: ${stage} refuses the chart's environment: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Values that must fail, and the message each must give. */
const BAD_VALUES: Array<{ set: string[]; message: string }> = [
  { set: ['jobs.retrain.enabled=true', 'jobs.retrain.schedule='], message: 'jobs.retrain.enabled needs jobs.retrain.schedule' },
  { set: ['stages.ranking.replica=3'], message: "at '/stages/ranking': additional properties 'replica' not allowed" },
  { set: ['bogus=1'], message: "additional properties 'bogus' not allowed" },
  { set: ['defaults.autoscaling.mode=hpa'], message: "at '/defaults/autoscaling/mode': value must be one of 'cpu', 'keda'" },
  {
    set: ['stages.gateway.resources.limits.memory=lots'],
    message: "at '/stages/gateway/resources/limits/memory': 'lots' does not match pattern",
  },
  { set: ['stages.gateway.service.httpPort=0'], message: "at '/stages/gateway/service/httpPort': minimum: got 0, want 1" },
  { set: ['gpu.executionProviders=tensorrt'], message: "at '/gpu/executionProviders': 'tensorrt' does not match pattern" },
  { set: ['artifacts.bundle.sha256=abc'], message: "at '/artifacts/bundle/sha256': 'abc' does not match pattern" },
  { set: ['index.backend=qdrant'], message: 'index.backend=qdrant needs qdrant.enabled=true (built-in) or qdrant.external.url' },
  { set: ['redis.enabled=false'], message: 'redis.enabled=false needs redis.external.existingSecret' },
  { set: ['apiKeys.existingSecret='], message: 'apiKeys.existingSecret is required' },
  {
    set: ['defaults.autoscaling.minReplicas=5', 'defaults.autoscaling.maxReplicas=3'],
    message: 'stages.gateway.autoscaling: minReplicas (5) must not exceed maxReplicas (3)',
  },
  { set: ['stages.ranking.config.GRPC_PORT=1'], message: 'stages.ranking.config.GRPC_PORT is set by the chart' },
  {
    set: ['artifacts.source=bundle', 'artifacts.bundle.url=https://x/b.tgz', `artifacts.bundle.sha256=${'a'.repeat(64)}`],
    message: 'artifacts.source=bundle is read-only',
  },
];

function checkBadValues(tools: Tools): number {
  for (const bad of BAD_VALUES) {
    const args = ['template', 'recsys', CHART, '--namespace', 'recsys', ...bad.set.flatMap((s) => ['--set', s])];
    const { status, output } = runFailing(tools.helm, args);
    assert.notEqual(status, 0, `--set ${bad.set.join(' ')} must fail`);
    assert.ok(output.includes(bad.message), `--set ${bad.set.join(' ')}: expected "${bad.message}", got: ${output}`);
  }
  // KEDA and the ServiceMonitor need their CRDs when rendered for a cluster.
  const keda = runFailing(tools.helm, ['template', 'recsys', CHART, '-f', join(CI, 'keda-values.yaml')]);
  assert.ok(keda.output.includes('needs KEDA (keda.sh/v1alpha1 ScaledObject) in the cluster'), keda.output);
  return BAD_VALUES.length + 1;
}

/** Every overlay under deploy/k8s/overlays renders and equals the chart rendered with the overlay's values.yaml. */
function checkKustomize(tools: Tools, validated: Array<{ object: K8sObject; source: string }>): string[] {
  const base = readFileSync(join(K8S, 'base', BASE_FILE), 'utf8');
  assert.equal(base, renderBase(tools), `deploy/k8s/base/${BASE_FILE} is not the chart's render: run pnpm gen:k8s`);
  const overlays = ['base', ...readdirSync(join(K8S, 'overlays')).map((o) => `overlays/${o}`)];
  for (const overlay of overlays) {
    const dir = join(K8S, overlay);
    const rendered = parseObjects(run(tools.kubectl, ['kustomize', dir]));
    for (const object of rendered) {
      validateObject(object);
      validated.push({ object, source: `kustomize ${overlay}` });
    }
    const valuesFiles = [join(K8S, 'base', 'values.yaml'), ...(overlay === 'base' ? [] : [join(dir, 'values.yaml')])];
    const chart = helmTemplate(tools, valuesFiles);
    const key = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;
    const sorted = (list: K8sObject[]) => [...list].sort((a, b) => key(a).localeCompare(key(b)));
    assert.deepEqual(rendered.map(key).sort(), chart.map(key).sort(), `kustomize ${overlay}: the same objects as the chart`);
    assert.deepEqual(
      sorted(rendered),
      sorted(chart),
      `kustomize ${overlay} differs from the chart rendered with ${valuesFiles.map((f) => relative(ROOT, f)).join(', ')}`,
    );
  }
  return overlays;
}

/**
 * The artifacts init container's script, taken from the rendered Deployment, run for real: it downloads a bundle
 * from a local HTTP server, unpacks it when the sha256 matches, and refuses it (exit 1, nothing unpacked) when not.
 */
async function checkFetchBundle(objects: K8sObject[]): Promise<void> {
  const retrieval = objects.find((o) => o.kind === 'Deployment' && componentOf(o) === 'retrieval') as Json;
  const init = retrieval.spec.template.spec.initContainers?.find((c: Json) => c.name === 'fetch-bundle');
  assert.ok(init, 'bundle-qdrant: retrieval fetches the bundle in an init container');
  const [node, flag, script] = init.command as string[];
  assert.deepEqual([node, flag], ['node', '-e']);
  const scratch = mkdtempSync(join(tmpdir(), 'recsys-bundle-'));
  const server = createServer((req, res) => {
    if (req.url === '/models-1.tar.gz') res.end(readFileSync(join(scratch, 'bundle.tar.gz')));
    else res.writeHead(404).end();
  });
  try {
    mkdirSync(join(scratch, 'src', 'models', 'dlrm', '1'), { recursive: true });
    writeFileSync(join(scratch, 'src', 'models', 'dlrm', '1', 'manifest.json'), '{"version":"1"}');
    run('tar', ['-czf', join(scratch, 'bundle.tar.gz'), '-C', join(scratch, 'src'), 'models']);
    const sha = createHash('sha256')
      .update(readFileSync(join(scratch, 'bundle.tar.gz')))
      .digest('hex');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/models-1.tar.gz`;
    const fetchInto = async (dir: string, expected: string) => {
      mkdirSync(dir);
      const child = spawn(process.execPath, ['-e', script!, url, expected, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const [code] = (await once(child, 'exit')) as [number];
      return { code, output };
    };
    const good = await fetchInto(join(scratch, 'good'), sha);
    assert.equal(good.code, 0, good.output);
    assert.equal(readFileSync(join(scratch, 'good', 'models', 'dlrm', '1', 'manifest.json'), 'utf8'), '{"version":"1"}');
    const bad = await fetchInto(join(scratch, 'bad'), 'f'.repeat(64));
    assert.equal(bad.code, 1, bad.output);
    assert.match(bad.output, /sha256 of .* is [0-9a-f]{64}, expected f{64}: refusing the bundle/);
    assert.deepEqual(readdirSync(join(scratch, 'bad')), [], 'nothing unpacked from a refused bundle');
  } finally {
    server.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The `helm test` pod's command, as rendered, run against a test double of the gateway's REST API (a local HTTP
 * server that answers like the gateway): it sends the first key of the mounted Secret directory, and passes only
 * on a 200 answer with items.
 */
async function checkHelmTestPod(objects: K8sObject[]): Promise<void> {
  const pod = objects.find((o) => o.kind === 'Pod' && componentOf(o) === 'test') as Json;
  assert.equal(pod.metadata.annotations['helm.sh/hook'], 'test');
  const [node, flag, script, gatewayUrl, userId, keysDir] = pod.spec.containers[0].command as string[];
  assert.deepEqual([node, flag], ['node', '-e']);
  assert.match(gatewayUrl!, /^http:\/\/recsys-gateway\.recsys\.svc\.cluster\.local:8080$/);
  assert.equal(keysDir, '/etc/recsys/api-keys');
  assert.ok(
    pod.spec.volumes.some((v: Json) => v.secret?.secretName === 'recsys-api-keys'),
    'the pod mounts the API keys',
  );
  const scratch = mkdtempSync(join(tmpdir(), 'recsys-helm-test-'));
  writeFileSync(join(scratch, 'a-key'), 'secret-key-1\n');
  let answer: { status: number; body: unknown } = { status: 200, body: { items: [{ item_id: 'i1' }], total_ms: 3, degradations: [] } };
  const seen: Array<{ url?: string; authorization?: string; body: string }> = [];
  const gatewayDouble = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ url: req.url, authorization: req.headers.authorization, body });
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
  });
  try {
    await new Promise<void>((resolve) => gatewayDouble.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(gatewayDouble.address() as AddressInfo).port}`;
    const runTest = async () => {
      const child = spawn(process.execPath, ['-e', script!, base, userId!, scratch], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const [code] = (await once(child, 'exit')) as [number];
      return { code, output };
    };
    const ok = await runTest();
    assert.equal(ok.code, 0, ok.output);
    assert.deepEqual(seen[0], {
      url: '/v1/recommendations',
      authorization: 'Bearer secret-key-1',
      body: JSON.stringify({ user_id: 'user-1', k: 10 }),
    });
    answer = { status: 200, body: { items: [] } };
    assert.equal((await runTest()).code, 1, 'an answer without items fails the test');
    answer = { status: 401, body: { error: 'unauthorized' } };
    const refused = await runTest();
    assert.equal(refused.code, 1);
    assert.match(refused.output, /HTTP 401/);
  } finally {
    gatewayDouble.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const tools = kubeTools();
  const validated: Array<{ object: K8sObject; source: string }> = [];
  const results: Checked[] = [];
  for (const c of cases) {
    const valuesArgs = c.files.flatMap((f) => ['-f', f]);
    run(tools.helm, ['lint', '--strict', CHART, ...valuesArgs]);
    const objects = helmTemplate(tools, c.files);
    for (const object of objects) {
      validateObject(object);
      validated.push({ object, source: c.name });
    }
    const values = c.files.length ? (parseObjects(readFileSync(c.files[0]!, 'utf8'))[0] as Json) : {};
    results.push(checkRender(c.name, objects, values));
    checkStageConfigs(c.name, objects);
    if (c.name === 'default') {
      await checkHelmTestPod(objects);
      console.log('default: the helm test pod passes against a gateway double answering items, fails on none and on 401');
    }
    if (c.name === 'bundle-qdrant') {
      await checkFetchBundle(objects);
      console.log('bundle-qdrant: the init container unpacks a bundle with the right sha256 and refuses a wrong one');
    }
    console.log(`${c.name}: lint --strict ok, ${objects.length} objects rendered and validated`);
  }
  // A configuration change rolls exactly the pods it concerns: their checksum/config changes, no other's.
  const checksums = (objects: K8sObject[]) =>
    new Map(byKind(objects, 'Deployment').map((d) => [componentOf(d), (d as Json).spec.template.metadata.annotations['checksum/config']]));
  const before = checksums(helmTemplate(tools, []));
  const after = checksums(helmTemplate(tools, [], ['--set', 'stages.ranking.config.LOG_LEVEL=debug']));
  for (const stage of STAGES) assert.equal(before.get(stage) !== after.get(stage), stage === 'ranking', `checksum/config of ${stage}`);
  console.log('checksum/config: a ranking config change rolls ranking only');
  // NOTES.txt, rendered as an install would (no cluster needed with --dry-run=client).
  const notes = run(tools.helm, ['install', 'recsys', CHART, '--namespace', 'recsys', '--dry-run=client']);
  assert.match(notes, /REST {2}http:\/\/recsys-gateway\.recsys\.svc\.cluster\.local:8080/);
  assert.match(notes, /helm test recsys -n recsys/);
  console.log('NOTES.txt renders for an install');
  const bad = checkBadValues(tools);
  console.log(`bad values: ${bad} refused with the expected message`);
  const overlays = checkKustomize(tools, validated);
  console.log(`kustomize: ${overlays.join(', ')} render, validate and equal the chart`);
  const typeCheckStarted = Date.now();
  const typeErrors = typeCheckObjects(validated);
  assert.deepEqual(typeErrors, [], `objects that do not type-check against their models:\n${typeErrors.join('\n')}`);
  console.log(
    `type-checked ${validated.length} objects against their TypeScript models in ${((Date.now() - typeCheckStarted) / 1000).toFixed(1)} s; ${((Date.now() - started) / 1000).toFixed(1)} s in all`,
  );
  console.log(
    JSON.stringify({
      values_files: cases.length,
      objects_validated: validated.length,
      // Both kinds were rendered somewhere, and every render had one per stage (none with autoscaling off).
      hpa_or_scaledobject_per_stage:
        results.every((r) => r.hpaOrScaledObjectPerStage) && results.some((r) => r.hpas > 0) && results.some((r) => r.scaledObjects > 0),
      pdb_per_stage: results.every((r) => r.pdbPerStage),
      gpu_only_when_enabled: results.every((r) => r.gpuOnlyWhenEnabled),
      networkpolicy_matches_call_graph: results.every((r) => r.networkPolicyMatchesCallGraph),
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
