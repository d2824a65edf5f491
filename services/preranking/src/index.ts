export * from './config.js';
export * from './preranker-model.js';
export * from './preranking-app.js';
export * from './preranking-metrics.js';
export * from './preranking-service.js';
