import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { features } from '@recsys/contracts';
import { type SyntheticOptions, fingerprint } from '@recsys/data';
import { ALL_IN_ONE_NODE_FLAGS, checkHealth, createServiceClient } from '@recsys/service-kit';
import { loadModelVersion } from '@recsys/serving';
import { loadFeatures } from '@recsys/offline';
import {
  DEFAULT_SYNTHETIC,
  type DataSource,
  type Progress,
  type TrainRunOptions,
  describeSource,
  prepareSetup,
  trainRun,
} from '@recsys/trainer';
import { indexIsCurrent, modelsDecision, twoTowerIdentity } from './model-cache.js';
import { PORT_WAIT_MS, type PortLabel, PortReservation, metricsPortLabel, waitForPort } from './ports.js';
import { type ExitResult, ServiceProcess } from './service-process.js';
import {
  ALL_IN_ONE_ENTRY,
  DEFAULT_PORTS,
  HOST,
  PIPELINE_MODES,
  type PipelineMode,
  allInOneEnv,
  INDEX_CLI,
  SERVICE_ENTRIES,
  SERVICE_NAMES,
  type ServiceName,
  type ServiceWiring,
  address,
  builtScript,
  serviceEnv,
} from './services.js';
import { readState, windowStart, writeState } from './state-file.js';
import { newestIndexVersion } from './versions.js';
import { WorkDirLock } from './work-dir-lock.js';

export type { PipelineMode, ServiceName } from './services.js';

export interface PipelineOptions {
  workDir: string;
  /** Use these trained models (root with two-tower/dlrm/preranker) instead of making data and training. */
  modelsDir?: string;
  /** Feature store: Redis URL; in memory when absent. */
  redisUrl?: string;
  /** Ports per service (gateway: grpc; httpPort for REST); 0 = a free port. Defaults: the fixed ports above. */
  ports?: Partial<Record<ServiceName, number>> & { http?: number };
  /** Extra env per service (e.g. { gateway: { API_KEYS: 'test:...' } }). */
  env?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Synthetic data size when training (defaults: the trainer's DEFAULT_SYNTHETIC). */
  synthetic?: Partial<SyntheticOptions>;
  /** Training settings per model when training (e.g. fewer epochs for a large catalogue); the trainer's defaults otherwise. */
  training?: Pick<TrainRunOptions, 'retrieval' | 'ranking' | 'preranking'>;
  /** false: the feature store holds this data already (a Redis an earlier launch loaded); default true. */
  loadFeatures?: boolean;
  /**
   * Which positive interactions are loaded as history and popularity: all (default: what serving knows), or the train
   * split only, so that held-out positives stay unseen (the funnel evaluation).
   */
  featureHistory?: 'all' | 'train';
  /** Leave services out (e.g. ['gateway'] before it exists); split mode only. */
  skip?: ServiceName[];
  /** Longest wait, when a service starts, for a connection that holds its port to let it go (default PORT_WAIT_MS). */
  portWaitMs?: number;
  /**
   * split (default): every service its own process, as on Kubernetes. all-in-one: one process runs them all, the stages
   * calling each other over the in-process transport; the gateway (gRPC, REST) and the feature service listen as in split.
   */
  mode?: PipelineMode;
  /** Every process exports Prometheus metrics on a free port (metricsUrl); all-in-one: one endpoint for all. */
  metrics?: boolean;
  log?: (line: string) => void;
}

export interface RunningPipeline {
  readonly mode: PipelineMode;
  /** gRPC host:port per service ('' for a skipped one; inproc://NAME for a stage inside the all-in-one process). */
  addresses: Record<ServiceName, string>;
  /** The gateway's REST base URL, e.g. http://127.0.0.1:8080 ('' when the gateway is skipped). */
  httpUrl: string;
  modelsDir: string;
  indexDir: string;
  /** Stop one service (SIGTERM, wait for exit); split mode only. */
  stop(name: ServiceName): Promise<void>;
  /** Start a stopped service again with the same env and port; resolves when healthy; split mode only. */
  start(name: ServiceName): Promise<void>;
  /**
   * Sends a signal to a service's process (all-in-one: the one process) and its group: SIGKILL (a crash; resolves once it
   * has ended, and start() brings it back), SIGSTOP and SIGCONT (a hung process). For fault-injection tests.
   */
  signal(name: ServiceName, signal: NodeJS.Signals): Promise<void>;
  /** The service's collected log output (for test failure messages). */
  output(name: ServiceName): string;
  /** Process id per running service (benchmarks read CPU/RSS); all-in-one: the one process's for every name. */
  pid(name: ServiceName): number | undefined;
  /** The service's metrics URL (http://host:port/metrics) when started with `metrics`; all-in-one: the one endpoint. */
  metricsUrl(name: ServiceName): string | undefined;
  close(): Promise<void>;
}

/** A service that ended during start-up, or never became healthy; the message carries its last output. */
export class ServiceStartError extends Error {
  constructor(
    readonly service: ServiceName,
    problem: string,
    output: string,
    /** It ended because a port it listens on was in use (EADDRINUSE). */
    readonly addressInUse = false,
  ) {
    super(`${service} ${problem}${output.trim() ? `; its last output:\n${lastLines(output, 30)}` : ' (it wrote nothing)'}`);
    this.name = 'ServiceStartError';
  }
}

/** Starts after a lost race for a port (taken between the launcher's check and the service's listen) before giving up. */
export const START_ATTEMPTS = 3;

/** Services drain in-flight calls for up to SHUTDOWN_TIMEOUT_MS (10 s by default) before they exit. */
export const STOP_TIMEOUT_MS = 15_000;
/**
 * Loading models and the index on a busy 2-core machine takes seconds, but the model stages read their item tables
 * (every stored item) before they serve: at a 1M-item catalogue that is ~3 s of CPU per stage, tens of seconds on a
 * loaded machine. Three minutes means something is wrong.
 */
export const HEALTH_TIMEOUT_MS = 180_000;
const POLL_MS = 100;

const silent = () => undefined;

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

/** The synthetic data this work directory trains on: the options given over the trainer's defaults, dated to end near today. */
export async function trainingSource(workDir: string, synthetic: Partial<SyntheticOptions> = {}, nowMs = Date.now()): Promise<DataSource> {
  const options: SyntheticOptions = { ...DEFAULT_SYNTHETIC, ...synthetic };
  if (options.startTime === undefined) {
    const state = await readState(workDir);
    const { startTime, chosen } = windowStart(state, nowMs, options.days ?? 30);
    if (chosen) await writeState(workDir, { ...state, syntheticStartTime: startTime });
    options.startTime = startTime;
  }
  return { kind: 'synthetic', options };
}

/** Per model, a line at the end of each epoch (and every few seconds within a long one). */
function progressLines(log: (line: string) => void): (p: Progress) => void {
  let lastAt = Date.now();
  let lastEpoch = '';
  return (p) => {
    const epochDone = p.step === p.epoch * p.stepsPerEpoch;
    const key = `${p.model}:${p.epoch}`;
    const now = Date.now();
    if ((epochDone && key !== lastEpoch) || now - lastAt > 5000) {
      if (epochDone) lastEpoch = key;
      lastAt = now;
      const share = Math.round((100 * (p.step - (p.epoch - 1) * p.stepsPerEpoch)) / p.stepsPerEpoch);
      log(
        `  ${p.model}: epoch ${p.epoch}/${p.epochs}${epochDone ? '' : ` (${share}%)`}, loss ${p.loss.toFixed(4)}, ` +
          `${Math.round(p.examplesPerS)} examples/s`,
      );
    }
  };
}

/** Data and models: the given model root, or synthetic data trained into <workDir>/models unless the newest version holds it. */
export async function preparePipeline(options: PipelineOptions): Promise<{ modelsDir: string }> {
  const log = options.log ?? silent;
  if (options.modelsDir !== undefined) return { modelsDir: resolve(options.modelsDir) };
  const workDir = resolve(options.workDir);
  await mkdir(workDir, { recursive: true });
  const source = await trainingSource(workDir, options.synthetic);
  const modelsDir = join(workDir, 'models');
  const decision = await modelsDecision(modelsDir, source);
  if (!decision.train) {
    log(`models: version ${decision.version} in ${modelsDir} is trained on this data; training skipped`);
    return { modelsDir };
  }
  const synthetic = (source as Extract<DataSource, { kind: 'synthetic' }>).options;
  const start = synthetic.startTime!;
  const end = start + (synthetic.days ?? 30) * 86_400;
  const day = (seconds: number) => new Date(seconds * 1000).toISOString().slice(0, 10);
  log(`training (${decision.reason}) on ${describeSource(source)} dated ${day(start)} to ${day(end)}, into ${modelsDir}`);
  const started = Date.now();
  const result = await trainRun(source, {
    out: modelsDir,
    // The uncorrected baseline is for reports only; serving never reads it.
    compareUncorrected: false,
    ...options.training,
    onProgress: progressLines(log),
    log: (line) => log(`  ${line}`),
  });
  log(`models: version ${result.version} trained in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { modelsDir };
}

/** Runs a node script to completion, its lines shown with a prefix; rejects with its last output when it fails. */
function runScript(label: string, script: string, args: string[], log: (line: string) => void): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const kill = () => child.kill('SIGKILL');
    process.on('exit', kill);
    let output = '';
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        output += chunk;
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) if (line.trim()) log(`[${label}] ${line}`);
      });
    }
    child.on('error', fail);
    child.on('close', (code, signal) => {
      process.off('exit', kill);
      if (code === 0) done();
      else fail(new Error(`${label} failed (${signal ?? `exit ${code}`}): ${lastLines(output, 20)}`));
    });
  });
}

async function loadFeatureData(
  modelsDir: string,
  featuresAddress: string,
  history: 'all' | 'train',
  log: (line: string) => void,
): Promise<void> {
  const model = await loadModelVersion(modelsDir, 'dlrm');
  const source = model.manifest.data.source;
  // The setup the model was trained on: its train counts (over the fitted rows) are what it reads.
  const { setup } = prepareSetup(source, model.manifest.data.preparation);
  if (fingerprint(setup) !== model.manifest.data.fingerprint)
    throw new Error(`the data at ${describeSource(source)} has changed since version ${model.version} was trained; retrain first`);
  const client = createServiceClient(features.FeatureService, featuresAddress, { defaultTimeoutMs: 60_000 });
  try {
    const started = Date.now();
    const result = await loadFeatures(client, setup, { history });
    if (result.rejected.length > 0) {
      const examples = result.rejected.slice(0, 5).map((r) => `${r.kind} ${r.id}: ${r.reason}`);
      throw new Error(`the feature service rejected ${result.rejected.length} rows, e.g. ${examples.join('; ')}`);
    }
    log(
      `features: loaded ${result.users} users, ${result.items} items, ${result.events} events ` +
        `(model version ${model.version}${history === 'train' ? ', history of the train split only' : ''}) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  } finally {
    client.close();
  }
}

/** The one pipeline a launch made; the CLI also watches for services that end on their own. */
export class Pipeline implements RunningPipeline {
  readonly addresses: Record<ServiceName, string>;
  readonly httpUrl: string;
  /** One process per service, or (all-in-one) one for all of them under the name 'all-in-one'. */
  private readonly processes = new Map<ServiceName | 'all-in-one', ServiceProcess>();
  private readonly killOnExit = () => this.processes.forEach((p) => p.kill());
  private closed = false;
  /** Services that reported healthy and were not stopped since: an exit of any other is a start-up failure, reported by start(). */
  private readonly healthy = new Set<ServiceName>();
  /** Called when a healthy service (all-in-one: the process) ends without being asked to. */
  onUnexpectedExit: (name: ServiceName | 'all-in-one', result: ExitResult, lastOutput: string[]) => void = () => undefined;

  constructor(
    readonly modelsDir: string,
    readonly indexDir: string,
    private readonly wiring: ServiceWiring,
    private readonly running: readonly ServiceName[],
    private readonly logDir: string,
    /** Each service's environment as it runs. */
    readonly envOf: (name: ServiceName) => Record<string, string>,
    private readonly log: (line: string) => void,
    readonly mode: PipelineMode = 'split',
    /** Ports held for services not started yet (by service name, 'http' for the gateway's REST port). */
    private readonly reservations = new Map<PortLabel, PortReservation>(),
    private readonly portWaitMs = PORT_WAIT_MS,
    /** The work directory's lock, let go on close. */
    private readonly lock?: WorkDirLock,
  ) {
    const where = (n: ServiceName) =>
      !running.includes(n) ? '' : mode === 'all-in-one' && n !== 'features' && n !== 'gateway' ? `inproc://${n}` : address(wiring.ports[n]);
    this.addresses = Object.fromEntries(SERVICE_NAMES.map((n) => [n, where(n)])) as Record<ServiceName, string>;
    this.httpUrl = running.includes('gateway') ? `http://${HOST}:${wiring.httpPort}` : '';
    process.on('exit', this.killOnExit);
  }

  private service(name: ServiceName): ServiceProcess {
    if (!this.running.includes(name)) throw new Error(`${name}: not part of this pipeline (skipped)`);
    const unit = this.mode === 'all-in-one' ? 'all-in-one' : name;
    let service = this.processes.get(unit);
    if (service === undefined) {
      service = new ServiceProcess({
        name: unit,
        script: builtScript(unit === 'all-in-one' ? ALL_IN_ONE_ENTRY : SERVICE_ENTRIES[name]),
        ...(unit === 'all-in-one' ? { nodeFlags: ALL_IN_ONE_NODE_FLAGS } : {}),
        env: this.envOf(name),
        logFile: join(this.logDir, `${unit}.log`),
        log: this.log,
        onUnexpectedExit: (s, result) => {
          if (this.closed || !this.healthy.delete(name)) return;
          const how = result.signal ? `signal ${result.signal}` : `exit code ${result.code}`;
          this.log(`${unit} ended unexpectedly (${how}); its last lines:\n${s.lastLines(20).join('\n')}`);
          this.onUnexpectedExit(unit, result, s.lastLines(20));
        },
      });
      this.processes.set(unit, service);
    }
    return service;
  }

  private splitOnly(what: string): void {
    if (this.mode === 'all-in-one')
      throw new Error(`${what}: the services share one process in all-in-one mode; close the pipeline instead`);
  }

  /** Starts a stopped service again with the same env and ports, and waits until it serves (split mode). */
  async start(name: ServiceName): Promise<void> {
    this.splitOnly(`start(${name})`);
    await this.startProcess(name);
  }

  /** Starts a service's process (all-in-one: the one process, which serves the feature service first) and waits for its health. */
  async startProcess(name: ServiceName): Promise<void> {
    if (this.closed) throw new Error('the pipeline is closed');
    const service = this.service(name);
    for (let attempt = 1; ; attempt++) {
      await this.portsReady(name);
      try {
        return await this.startOnce(name, service);
      } catch (error) {
        if (!(error instanceof ServiceStartError && error.addressInUse) || attempt >= START_ATTEMPTS || this.closed) throw error;
        this.log(
          `${name}: its port was taken (EADDRINUSE) between the launcher's check and its listen; starting it again (${attempt + 1} of ${START_ATTEMPTS})`,
        );
      }
    }
  }

  /** Lets go of the ports held for the service, then waits until nothing else holds them. */
  private async portsReady(name: ServiceName): Promise<void> {
    const ports: [PortLabel, number][] = [[name, this.wiring.ports[name]]];
    if (name === 'gateway') ports.push(['http', this.wiring.httpPort]);
    // All-in-one: the one endpoint (wired as the gateway's) listens as soon as the process has started the feature service.
    const metricsOf = this.mode === 'all-in-one' ? (name === 'features' ? 'gateway' : undefined) : name;
    const metricsPort = metricsOf === undefined ? undefined : this.wiring.metricsPorts?.[metricsOf];
    if (metricsPort !== undefined) ports.push([metricsPortLabel(metricsOf!), metricsPort]);
    for (const [label, port] of ports) {
      await this.reservations.get(label)?.release();
      this.reservations.delete(label);
      await waitForPort(label, port, this.log, this.portWaitMs);
    }
  }

  private async startOnce(name: ServiceName, service: ServiceProcess): Promise<void> {
    service.start();
    const until = Date.now() + HEALTH_TIMEOUT_MS;
    const grpcAddress = address(this.wiring.ports[name]);
    while (!(await serving(grpcAddress))) await this.waitOrFail(service, until, `did not report SERVING on ${grpcAddress}`);
    if (name === 'gateway') {
      while (!(await restHealthy(this.httpUrl))) await this.waitOrFail(service, until, `did not answer GET ${this.httpUrl}/healthz`);
    }
    this.healthy.add(name);
    this.log(`${name}: serving on ${grpcAddress}${name === 'gateway' ? ` and ${this.httpUrl}` : ''} (pid ${service.pid})`);
  }

  /**
   * All-in-one: the process runs the feature service alone until the features are loaded and the index is built; then
   * SIGUSR2 starts the stages and the gateway, and this resolves once the gateway serves gRPC and REST.
   */
  async startStagesInProcess(): Promise<void> {
    const service = this.service('gateway');
    if (!service.running || service.pid === undefined) throw new Error('all-in-one: the process is not running');
    // The gateway's gRPC and REST ports were held by the launcher until now.
    await this.portsReady('gateway');
    process.kill(service.pid, 'SIGUSR2');
    const until = Date.now() + HEALTH_TIMEOUT_MS;
    const grpcAddress = address(this.wiring.ports.gateway);
    while (!(await serving(grpcAddress))) await this.waitOrFail(service, until, `did not report SERVING on ${grpcAddress}`);
    while (!(await restHealthy(this.httpUrl))) await this.waitOrFail(service, until, `did not answer GET ${this.httpUrl}/healthz`);
    for (const name of this.running) this.healthy.add(name);
    this.log(`all-in-one: every stage serving in one process (pid ${service.pid}); gateway on ${grpcAddress} and ${this.httpUrl}`);
  }

  private async waitOrFail(service: ServiceProcess, until: number, problem: string): Promise<void> {
    if (!service.running) {
      const { code, signal } = await service.exited;
      const output = service.output();
      throw new ServiceStartError(
        service.name as ServiceName,
        `exited during start-up (${signal ?? `exit code ${code}`})`,
        output,
        /EADDRINUSE/.test(lastLines(output, 30)),
      );
    }
    if (Date.now() > until) {
      await service.stop(STOP_TIMEOUT_MS);
      throw new ServiceStartError(service.name as ServiceName, `${problem} within ${HEALTH_TIMEOUT_MS} ms`, service.output());
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }

  async stop(name: ServiceName): Promise<void> {
    this.splitOnly(`stop(${name})`);
    this.healthy.delete(name);
    await this.processes.get(name)?.stop(STOP_TIMEOUT_MS);
  }

  async signal(name: ServiceName, signal: NodeJS.Signals): Promise<void> {
    const service = this.unit(name);
    if (service === undefined || !service.running) throw new Error(`signal(${name}): not running`);
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.healthy.delete(name);
    await service.signal(signal);
  }

  private unit(name: ServiceName): ServiceProcess | undefined {
    return this.processes.get(this.mode === 'all-in-one' ? 'all-in-one' : name);
  }

  output(name: ServiceName): string {
    return this.unit(name)?.output() ?? '';
  }

  pid(name: ServiceName): number | undefined {
    return this.unit(name)?.pid;
  }

  metricsUrl(name: ServiceName): string | undefined {
    const port = this.wiring.metricsPorts?.[this.mode === 'all-in-one' ? 'gateway' : name];
    return port === undefined ? undefined : `http://${HOST}:${port}/metrics`;
  }

  /** Stops every service, the last started first, each given time to drain. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const name of ['all-in-one' as const, ...[...SERVICE_NAMES].reverse()]) {
      const service = this.processes.get(name);
      if (service?.running) {
        this.log(`${name}: stopping`);
        await service.stop(STOP_TIMEOUT_MS);
      }
    }
    await Promise.all([...this.processes.values()].map((p) => p.closeLog()));
    await Promise.all([...this.reservations.values()].map((r) => r.release()));
    process.off('exit', this.killOnExit);
    this.lock?.release();
  }
}

async function serving(grpcAddress: string): Promise<boolean> {
  try {
    return (await checkHealth(grpcAddress, '', 500)) === 'SERVING';
  } catch {
    return false;
  }
}

async function restHealthy(baseUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * Makes data and trains (cached), starts the feature service and loads it, builds the index (cached), then starts every
 * other service as its own process on loopback and waits until all are healthy. On any failure the services already
 * started are stopped and the error names the failing step or service, with its output.
 */
export async function launchPipeline(options: PipelineOptions, onCreated?: (pipeline: Pipeline) => void): Promise<Pipeline> {
  const log = options.log ?? silent;
  const mode = options.mode ?? 'split';
  if (!PIPELINE_MODES.includes(mode)) throw new Error(`mode: expected ${PIPELINE_MODES.join(' or ')}, got "${String(mode)}"`);
  const skip = new Set(options.skip ?? []);
  if (mode === 'all-in-one' && skip.size > 0) throw new Error('skip: the all-in-one mode runs every service; leave skip out');
  const unknown = [...skip].find((name) => !SERVICE_NAMES.includes(name));
  if (unknown !== undefined) throw new Error(`skip: unknown service "${unknown}" (services are ${SERVICE_NAMES.join(', ')})`);
  if (skip.has('features')) throw new Error('skip: the feature service cannot be left out: every other step reads it');
  const running = SERVICE_NAMES.filter((name) => !skip.has(name));
  // Fail before training when a build is missing.
  if (mode === 'all-in-one') builtScript(ALL_IN_ONE_ENTRY);
  else for (const name of running) builtScript(SERVICE_ENTRIES[name]);
  const indexCli = running.includes('retrieval') ? builtScript(INDEX_CLI) : undefined;

  const workDir = resolve(options.workDir);
  const indexDir = join(workDir, 'indexes');
  const logDir = join(workDir, 'logs');
  // One run per work directory: a second would train and build into the same place.
  const lock = await WorkDirLock.acquire(workDir, log);
  const reservations = new Map<PortLabel, PortReservation>();
  let pipeline: Pipeline;
  try {
    await mkdir(indexDir, { recursive: true });
    await mkdir(logDir, { recursive: true });
    // All-in-one: the stages take calls in-process; only the feature service and the gateway have ports.
    const listens = (name: ServiceName) => mode !== 'all-in-one' || name === 'features' || name === 'gateway';
    // Every port held from here until its service starts (see PortReservation); another server on one fails here, before training.
    const wanted: [PortLabel, number][] = running.filter(listens).map((name) => [name, options.ports?.[name] ?? DEFAULT_PORTS[name]]);
    if (running.includes('gateway')) wanted.push(['http', options.ports?.http ?? DEFAULT_PORTS.http]);
    for (const [label, port] of wanted) {
      const twin = wanted.find(([other, p]) => other !== label && p === port && port !== 0);
      if (twin !== undefined) throw new Error(`--${label}-port and --${twin[0]}-port: both ${port}; each needs a port of its own`);
    }
    for (const [label, port] of wanted) reservations.set(label, await PortReservation.take(label, port, log));
    const ports = Object.fromEntries(running.map((name) => [name, reservations.get(name)?.port ?? 0])) as Record<ServiceName, number>;
    const httpPort = reservations.get('http')?.port ?? -1;
    let metricsPorts: ServiceWiring['metricsPorts'];
    if (options.metrics) {
      metricsPorts = {};
      // Held like the others until the service starts: a port only looked up free would be free to anyone until then.
      for (const name of mode === 'all-in-one' ? (['gateway'] as const) : running) {
        const reservation = await PortReservation.take(metricsPortLabel(name), 0, log);
        reservations.set(metricsPortLabel(name), reservation);
        metricsPorts[name] = reservation.port;
      }
    }
    const { modelsDir } = await preparePipeline(options);
    const wiring: ServiceWiring = { ports, httpPort, metricsPorts, modelsDir, indexDir, redisUrl: options.redisUrl };
    pipeline = new Pipeline(
      modelsDir,
      indexDir,
      wiring,
      running,
      logDir,
      mode === 'all-in-one'
        ? () => allInOneEnv(wiring, process.env, options.env)
        : (name) => serviceEnv(name, wiring, process.env, options.env?.[name]),
      log,
      mode,
      reservations,
      options.portWaitMs,
      lock,
    );
  } catch (error) {
    await Promise.all([...reservations.values()].map((r) => r.release()));
    lock.release();
    throw error;
  }
  onCreated?.(pipeline);
  try {
    const { modelsDir } = pipeline;
    const store = options.redisUrl ? `Redis at ${options.redisUrl}` : 'in-memory store';
    if (mode === 'all-in-one') log(`all-in-one: starting one process, the feature service first (${store}); log in ${logDir}`);
    else log(`features: starting (${store}); logs in ${logDir}`);
    await pipeline.startProcess('features');
    if (options.loadFeatures === false) log('features: loading skipped (the store holds them already)');
    else await loadFeatureData(modelsDir, pipeline.addresses.features, options.featureHistory ?? 'all', log);
    if (indexCli !== undefined) await buildIndex(workDir, modelsDir, indexDir, indexCli, pipeline.addresses.features, log);
    if (mode === 'all-in-one') {
      await pipeline.startStagesInProcess();
      return pipeline;
    }
    await Promise.all(running.filter((n) => n !== 'features' && n !== 'gateway').map((n) => pipeline.start(n)));
    if (running.includes('gateway')) await pipeline.start('gateway');
    return pipeline;
  } catch (error) {
    await pipeline.close();
    throw error;
  }
}

/** Builds an index version of the newest two-tower, unless the one built last here holds it and is still the newest. */
async function buildIndex(
  workDir: string,
  modelsDir: string,
  indexDir: string,
  indexCli: string,
  featuresAddress: string,
  log: (line: string) => void,
): Promise<void> {
  const twoTower = await twoTowerIdentity(modelsDir);
  const state = await readState(workDir);
  const newest = await newestIndexVersion(indexDir);
  if (indexIsCurrent(state.index, newest, twoTower)) {
    log(`index: version ${newest} in ${indexDir} holds two-tower version ${twoTower.version}; build skipped`);
    return;
  }
  log(`index: building from two-tower version ${twoTower.version} into ${indexDir}`);
  await runScript('index', indexCli, ['build', '--models', modelsDir, '--index-dir', indexDir, '--features', featuresAddress], log);
  const version = await newestIndexVersion(indexDir);
  if (version === undefined) throw new Error(`index: the build reported success but ${indexDir} holds no index version`);
  await writeState(workDir, { ...(await readState(workDir)), index: { version, twoTower } });
}

export async function startPipeline(options: PipelineOptions): Promise<RunningPipeline> {
  return launchPipeline(options);
}
