export * from './metrics.js';
export * from './report.js';
