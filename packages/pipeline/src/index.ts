export {
  type PipelineMode,
  type PipelineOptions,
  type RunningPipeline,
  type ServiceName,
  HEALTH_TIMEOUT_MS,
  STOP_TIMEOUT_MS,
  ServiceStartError,
  preparePipeline,
  startPipeline,
} from './pipeline.js';
export { DEFAULT_PORTS, PIPELINE_MODES, SERVICE_NAMES } from './services.js';
