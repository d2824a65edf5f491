// `pnpm test:image`: builds deploy/Dockerfile with buildah (no Docker daemon) on a base built offline
// (deploy/local-base/build.sh), then runs the feature service, re-ranking and the gateway from the image as
// Kubernetes would: read-only root filesystem, user 10001, every capability dropped, no privilege escalation,
// only /tmp writable (a tmpfs, as an emptyDir), the API key from a read-only mounted Secret-like directory. The
// feature bulk loader and the offline tools (train, load-features, build-index) run from the same image; the gateway
// is reached over REST and gRPC from this machine.
// Retrieval, pre-ranking and ranking are left out on purpose: the gateway answers from the feature service's
// popular items, ranked by feedback sent through it, and re-ranking still runs (checked in the answer).
// Stdout ends with one JSON line: image_mib, build_s, services_started, answers_ok.
//
// Needs: root, buildah/podman/runc/debootstrap (scripts/test-image.sh installs them), CONTAINERS_STORAGE_CONF
// (vfs storage), network to the npm registry and Debian's mirror on the first run (the base and the pnpm store
// are cached, see deploy/README.md).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { gateway } from '@recsys/contracts';
import { createServiceClient, freePort, repoRoot, waitForServing } from '@recsys/service-kit';

const CACHE_DIR = process.env.RECSYS_IMAGE_CACHE ?? resolve(process.env.HOME ?? tmpdir(), '.cache/recsys-image');
const IMAGE = process.env.RECSYS_IMAGE_TAG ?? 'localhost/recsys:test';
const CA_BUNDLE = process.env.RECSYS_IMAGE_CA ?? process.env.NODE_EXTRA_CA_CERTS ?? '/etc/ssl/certs/ca-certificates.crt';
/** RECSYS_IMAGE_KEEP=1 keeps the built image; RECSYS_IMAGE_REUSE=1 runs the checks on it without building again. */
const KEEP = process.env.RECSYS_IMAGE_KEEP === '1';
const START_TIMEOUT_MS = 120_000;
const API_KEY = 'image-test-key-0123456789';
const RUN_ID = `recsys-image-${process.pid}`;

/** How every container runs: as a restricted Kubernetes pod would, on this machine's network (loopback only). */
const RUNTIME_FLAGS = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
const POD_FLAGS = [
  '--network', 'host',
  '--read-only', '--read-only-tmpfs=false', '--tmpfs', '/tmp:rw,size=256m,mode=1777',
  '--user', '10001:10001', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
  // podman raises these limits by default, which this sandbox's kernel refuses; any value under the host's works.
  '--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096',
  '--log-driver', 'k8s-file',
]; // prettier-ignore

const log = (message: string) => process.stderr.write(`test:image: ${message}\n`);

function run(
  command: string,
  args: string[],
  options: { input?: string; allowFail?: boolean; quiet?: boolean } = {},
): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, {
    cwd: repoRoot,
    encoding: 'utf8',
    input: options.input,
    stdio: ['pipe', 'pipe', options.quiet ? 'pipe' : 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  if (result.status !== 0 && !options.allowFail) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}\n${result.stdout}${options.quiet ? result.stderr : ''}`);
  }
  return result;
}

const podman = (args: string[], options: { allowFail?: boolean; quiet?: boolean } = {}) =>
  run('podman', [...RUNTIME_FLAGS, ...args], options);

const checks: { name: string; ok: boolean; detail?: string }[] = [];
function check(name: string, ok: boolean, detail?: string): void {
  checks.push({ name, ok, ...(detail === undefined ? {} : { detail }) });
  log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail && !ok ? `: ${detail}` : ''}`);
}

interface Started {
  name: string;
  container: string;
}

const containers: string[] = [];

/** Starts one service of the image, detached, as a pod would run it. */
function startService(name: string, env: Record<string, string>, mounts: string[] = []): Started {
  const container = `${RUN_ID}-${name}`;
  const envFlags = Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
  podman(['run', '--detach', '--name', container, ...POD_FLAGS, ...mounts.flatMap((m) => ['--volume', m]), ...envFlags, IMAGE, name], {
    quiet: true,
  });
  containers.push(container);
  return { name, container };
}

function logsOf(container: string): string {
  const result = podman(['logs', container], { allowFail: true, quiet: true });
  return `${result.stdout}${result.stderr}`;
}

async function waitHealthy(service: Started, address: string): Promise<boolean> {
  try {
    await waitForServing(address, START_TIMEOUT_MS);
    return true;
  } catch (error) {
    log(`${service.name} never reported SERVING: ${(error as Error).message}\n${logsOf(service.container).slice(-3000)}`);
    return false;
  }
}

/** The parts of the gateway's REST answers the checks read. */
interface RestJson {
  accepted?: number;
  items?: { item_id: string }[];
  degradations?: { stage: string }[];
  error?: { field?: string };
}

async function http(url: string, init: RequestInit = {}): Promise<{ status: number; text: string; json: RestJson | undefined }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  let json: RestJson | undefined;
  try {
    json = JSON.parse(text) as RestJson;
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}

function cleanUp(): void {
  const start = Date.now();
  for (const container of containers.reverse()) podman(['rm', '--force', '--time', '5', container], { allowFail: true, quiet: true });
  if (!KEEP && process.env.RECSYS_IMAGE_REUSE !== '1') {
    podman(['rmi', '--force', IMAGE], { allowFail: true, quiet: true });
    run('buildah', ['rm', '--all'], { allowFail: true, quiet: true });
  }
  log(`cleaned up in ${((Date.now() - start) / 1000).toFixed(1)} s`);
}

async function main(): Promise<number> {
  const started = Date.now();
  if (!process.env.CONTAINERS_STORAGE_CONF) throw new Error('CONTAINERS_STORAGE_CONF is not set: run scripts/test-image.sh');

  // 1. The base, built offline and cached (deploy/local-base/build.sh prints its name).
  const baseStart = Date.now();
  const base = run('bash', ['deploy/local-base/build.sh', CACHE_DIR], { quiet: false }).stdout.trim().split('\n').pop()!;
  const baseSeconds = (Date.now() - baseStart) / 1000;
  log(`base ${base} (${baseSeconds.toFixed(1)} s)`);

  // 2. The image, with buildah: no daemon, chroot isolation, the host's CA bundle as a build secret for the registry.
  const buildStart = Date.now();
  const reuse = process.env.RECSYS_IMAGE_REUSE === '1' && podman(['image', 'exists', IMAGE], { allowFail: true }).status === 0;
  const secret = existsSync(CA_BUNDLE) ? ['--secret', `id=ca,src=${CA_BUNDLE}`] : [];
  if (reuse) log(`RECSYS_IMAGE_REUSE=1: using the existing ${IMAGE} (build_s is null)`);
  else run('buildah', ['bud', '--isolation', 'chroot', '--layers=false', '--pull=never', '-f', 'deploy/Dockerfile',
    '--build-arg', `BASE=${base}`, '--target', 'runtime', ...secret, '--tag', IMAGE, '.']); // prettier-ignore
  const buildSeconds = reuse ? null : (Date.now() - buildStart) / 1000;
  const inspect = JSON.parse(podman(['image', 'inspect', IMAGE], { quiet: true }).stdout)[0];
  const imageMiB = Math.round(inspect.Size / 2 ** 20);
  log(`image ${IMAGE}: ${imageMiB} MiB${buildSeconds === null ? '' : `, built in ${buildSeconds.toFixed(1)} s`}`);
  check('image runs as user 10001', inspect.Config.User === '10001:10001', inspect.Config.User);
  check('entry point is tini', inspect.Config.Entrypoint?.[0] === 'tini', JSON.stringify(inspect.Config.Entrypoint));

  // 3. Services: features, re-ranking and the gateway; the stages the gateway would call next are absent.
  const host = '127.0.0.1';
  const [featuresPort, featuresMetrics, rerankingPort, gatewayPort, gatewayHttp, gatewayMetrics, ...absent] = await Promise.all(
    Array.from({ length: 9 }, () => freePort(host)),
  );
  // A short drain, so that the stop checks below are quick; a pod's grace period must exceed it.
  const common = { GRPC_HOST: host, METRICS_HOST: host, LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: '3000' };
  const work = mkdtempSync(join(tmpdir(), 'recsys-image-test-'));
  const keys = join(work, 'api-keys');
  mkdirSync(keys);
  writeFileSync(join(keys, 'image-test'), API_KEY); // one file per key, as a Kubernetes Secret volume holds them
  chmodSync(work, 0o755); // the container's user 10001 reads the mounted key
  chmodSync(join(keys, 'image-test'), 0o644);

  const services: Started[] = [];
  const features = startService('features', { ...common, GRPC_PORT: String(featuresPort), METRICS_PORT: String(featuresMetrics) });
  services.push(features);
  const reranking = startService('reranking', { ...common, GRPC_PORT: String(rerankingPort), FEATURES_ADDRESS: `${host}:${featuresPort}` });
  services.push(reranking);
  const gatewayService = startService(
    'gateway',
    {
      ...common,
      GRPC_PORT: String(gatewayPort),
      HTTP_HOST: host,
      HTTP_PORT: String(gatewayHttp),
      METRICS_PORT: String(gatewayMetrics),
      FEATURES_ADDRESS: `${host}:${featuresPort}`,
      RETRIEVAL_ADDRESS: `${host}:${absent[0]}`,
      PRERANKING_ADDRESS: `${host}:${absent[1]}`,
      RANKING_ADDRESS: `${host}:${absent[2]}`,
      RERANKING_ADDRESS: `${host}:${rerankingPort}`,
      API_KEYS_FILE: '/var/run/secrets/recsys/api-keys',
      POPULAR_REFRESH_MS: '500',
      BUDGET_DEFAULT_MS: '1000',
    },
    [`${keys}:/var/run/secrets/recsys/api-keys:ro`],
  );
  services.push(gatewayService);
  const addresses: Record<string, string> = {
    features: `${host}:${featuresPort}`,
    reranking: `${host}:${rerankingPort}`,
    gateway: `${host}:${gatewayPort}`,
  };
  let servicesStarted = 0;
  for (const service of services) {
    const healthy = await waitHealthy(service, addresses[service.name]!);
    check(`${service.name}: gRPC health SERVING`, healthy);
    if (healthy) servicesStarted++;
  }
  if (servicesStarted !== services.length) return finish();

  // 4. What the pods look like from inside: tini as PID 1, uid 10001, root filesystem read-only, /tmp writable,
  //    no package manager or compiler in the image.
  const inside = (container: string, script: string) => podman(['exec', container, 'sh', '-c', script], { allowFail: true, quiet: true });
  const pid1 = inside(features.container, 'tr "\\0" " " < /proc/1/cmdline').stdout;
  check('tini is PID 1 and node runs under it', /^tini -- recsys features/.test(pid1), pid1);
  check('the process runs as uid 10001', inside(features.container, 'id -u').stdout.trim() === '10001');
  const writes = inside(features.container, 'touch /app/x 2>/dev/null && echo app-writable; touch /tmp/x && echo tmp-writable').stdout;
  check('root filesystem read-only, /tmp writable', writes.trim() === 'tmp-writable', writes);
  const tools = inside(
    features.container,
    'for t in npm npx pnpm corepack yarn tsc gcc cc g++ make python3; do command -v $t; done; ls -d /src /usr/local/lib/node_modules 2>/dev/null',
  ).stdout;
  check('no package manager, compiler or sources in the image', tools.trim() === '', tools);
  const unknown = podman(['exec', features.container, 'recsys', 'no-such-service'], { allowFail: true, quiet: true });
  check(
    'an unknown command exits 2 naming it',
    unknown.status === 2 && unknown.stderr.includes('unknown command "no-such-service"'),
    unknown.stderr,
  );

  // 5. The feature bulk loader, from the same image, reading a read-only mounted directory.
  const load = podman(
    ['run', '--rm', ...POD_FLAGS, '--volume', `${resolve(repoRoot, 'deploy/sample')}:/data:ro`, IMAGE, 'features-cli', 'load',
      '--users', '/data/users.jsonl', '--items', '/data/items.csv', '--address', addresses.features!], // prettier-ignore
    { allowFail: true, quiet: true },
  );
  check(
    'features-cli load from the image stores the sample rows',
    load.status === 0 && /\b200\b/.test(load.stdout + load.stderr),
    `${load.stdout}${load.stderr}`.slice(-800),
  );

  // 6. Answers through the gateway.
  const base_url = `http://${host}:${gatewayHttp}`;
  const auth = { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` };
  const healthz = await http(`${base_url}/healthz`);
  check('gateway REST /healthz answers 200', healthz.status === 200, healthz.text);
  const noKey = await http(`${base_url}/v1/recommendations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"user_id":"user-1"}',
  });
  check('a request without the mounted key is refused (401)', noKey.status === 401, String(noKey.status));
  // Feedback makes item-7 the most popular item, then item-12, then item-3 (purchase 4, click 1, view 1 by default).
  const events = [
    ...Array.from({ length: 5 }, (_, i) => ({ event_id: `e7-${i}`, user_id: `fan-${i}`, item_id: 'item-7', event_type: 'purchase' })),
    ...Array.from({ length: 3 }, (_, i) => ({ event_id: `e12-${i}`, user_id: `fan-${i}`, item_id: 'item-12', event_type: 'purchase' })),
    ...Array.from({ length: 2 }, (_, i) => ({ event_id: `e3-${i}`, user_id: `fan-${i}`, item_id: 'item-3', event_type: 'click' })),
  ];
  const feedback = await http(`${base_url}/v1/feedback`, { method: 'POST', headers: auth, body: JSON.stringify({ events }) });
  check('feedback through the gateway is stored', feedback.status === 200 && feedback.json?.accepted === events.length, feedback.text);
  const badK = await http(`${base_url}/v1/recommendations`, { method: 'POST', headers: auth, body: '{"user_id":"user-1","k":-1}' });
  check('a bad field is a 400 naming it', badK.status === 400 && badK.json?.error?.field === 'k', badK.text);

  const catalogue = new Set(
    readFileSync(resolve(repoRoot, 'deploy/sample/items.csv'), 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.split(',')[0])
      .filter(Boolean),
  );
  const rest = await http(`${base_url}/v1/recommendations`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ user_id: 'user-1', k: 3 }),
  });
  const restItems: string[] = (rest.json?.items ?? []).map((item) => item.item_id);
  const degraded = new Set<string>((rest.json?.degradations ?? []).map((d) => d.stage));
  check(
    'REST recommendation answers 200 with 3 items of the catalogue',
    rest.status === 200 && restItems.length === 3 && restItems.every((id) => catalogue.has(id)),
    rest.text,
  );
  check(
    'the answer is the popular items the feedback made',
    JSON.stringify([...restItems].sort()) === JSON.stringify(['item-12', 'item-3', 'item-7']),
    restItems.join(','),
  );
  check(
    'the absent stages are reported as degradations, re-ranking (running) is not',
    ['STAGE_RETRIEVAL', 'STAGE_PRERANKING', 'STAGE_RANKING'].every((s) => degraded.has(s)) && !degraded.has('STAGE_RERANKING'),
    [...degraded].join(','),
  );

  const client = createServiceClient(gateway.GatewayService, addresses.gateway!, { defaultTimeoutMs: 10_000 });
  try {
    const metadata = new Metadata();
    metadata.set('x-api-key', API_KEY);
    const answer = await client.recommend({ userId: 'user-1', k: 3 }, { metadata });
    const grpcItems = answer.items.map((item) => item.itemId);
    check('gRPC Recommend answers the same items', JSON.stringify(grpcItems) === JSON.stringify(restItems), grpcItems.join(','));
  } catch (error) {
    check('gRPC Recommend answers the same items', false, (error as Error).message);
  } finally {
    client.close();
  }
  const metrics = await http(`http://${host}:${featuresMetrics}/metrics`);
  check(
    'feature service metrics count the calls',
    metrics.status === 200 && /grpc_server_handled_total\{[^}]*GetPopularItems[^}]*code="OK"/.test(metrics.text),
    metrics.text.slice(0, 200),
  );

  // 7. The offline tools from the image, in the running feature service's pod (its /tmp as their scratch volume):
  //    train (onnxruntime's native library), load the trained data into the feature service, build an embedded
  //    index (usearch's native addon). They run after the answers above, as they change the popularity counts.
  const tool = (args: string[]) => {
    const result = podman(['exec', features.container, 'recsys', ...args], { allowFail: true, quiet: true });
    return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.slice(-1500) };
  };
  const train = tool(['train', '--out', '/tmp/models', '--users', '400', '--items', '200', '--interactions-per-user', '30',
    '--retrieval-epochs', '1', '--ranking-epochs', '1', '--preranking-epochs', '1', '--no-baseline']); // prettier-ignore
  const published = inside(
    features.container,
    'ls /tmp/models/two-tower/1/manifest.json /tmp/models/dlrm/1/model.onnx /tmp/models/preranker/1/model.onnx',
  );
  check('train from the image publishes the three models', train.ok && published.status === 0, `${train.output}${published.stderr}`);
  const loaded = tool(['load-features', '--models', '/tmp/models', '--address', addresses.features!]);
  check('load-features from the image loads the trained data', loaded.ok, loaded.output);
  const indexed = tool(['build-index', '--models', '/tmp/models', '--index-dir', '/tmp/indexes', '--features', addresses.features!]);
  check(
    'build-index from the image publishes an embedded index',
    indexed.ok && inside(features.container, 'ls -d /tmp/indexes/*').status === 0,
    indexed.output,
  );

  // 8. A graceful stop: SIGTERM goes through tini to node, which drains and exits 0 (the gateway first, as a
  //    rollout would, then the stages it called).
  for (const service of [gatewayService, reranking, features]) {
    const stopStart = Date.now();
    podman(['stop', '--time', '20', service.container], { quiet: true });
    const stopMs = Date.now() - stopStart;
    log(`${service.name} stopped in ${stopMs} ms`);
    const exit = podman(['inspect', '--format', '{{.State.ExitCode}}', service.container], { quiet: true }).stdout.trim();
    const stopLogs = logsOf(service.container);
    check(
      `${service.name} stops on SIGTERM with exit code 0`,
      exit === '0' && stopLogs.includes('shutting down'),
      `exit ${exit} after ${stopMs} ms\n${stopLogs.slice(-1500)}`,
    );
  }
  rmSync(work, { recursive: true, force: true });
  return finish();

  function finish(): number {
    const answersOk = checks.length > 0 && checks.every((c) => c.ok);
    const failed = checks.filter((c) => !c.ok).map((c) => c.name);
    log(`${checks.length - failed.length} passed, ${failed.length} failed`);
    console.log(
      JSON.stringify({
        image_mib: imageMiB,
        build_s: buildSeconds === null ? null : Math.round(buildSeconds * 10) / 10,
        services_started: servicesStarted,
        answers_ok: answersOk,
        checks_passed: checks.length - failed.length,
        checks_failed: failed,
        setup_s: process.env.RECSYS_IMAGE_SETUP_S === undefined ? null : Number(process.env.RECSYS_IMAGE_SETUP_S),
        base_s: Math.round(baseSeconds * 10) / 10,
        total_s: Math.round((Date.now() - started) / 100) / 10,
      }),
    );
    return answersOk && servicesStarted === services.length ? 0 : 1;
  }
}

main().then(
  (code) => {
    cleanUp();
    process.exit(code);
  },
  (error: unknown) => {
    cleanUp();
    console.error('test:image failed:', error);
    process.exit(1);
  },
);
