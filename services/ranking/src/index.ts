export * from './config.js';
export * from './dlrm-model.js';
export * from './inference-batcher.js';
export * from './ranking-app.js';
export * from './ranking-metrics.js';
export * from './ranking-service.js';
