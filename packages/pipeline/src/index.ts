export {
  type PipelineMode,
  type PipelineOptions,
  type RunningPipeline,
  type ServiceName,
  HEALTH_TIMEOUT_MS,
  START_ATTEMPTS,
  STOP_TIMEOUT_MS,
  ServiceStartError,
  launchPipeline,
  preparePipeline,
  startPipeline,
} from './pipeline.js';
export { DEFAULT_PORTS, PIPELINE_MODES, SERVICE_NAMES } from './services.js';
export { PORT_WAIT_MS, PortInUseError } from './ports.js';
export { LOCK_FILE, WorkDirLock, WorkDirLockedError } from './work-dir-lock.js';
export { type EvaluatePipelineOptions, type EvaluatePipelineResult, evaluatePipeline, stageLists } from './evaluate-pipeline.js';
export * from './funnel.js';
