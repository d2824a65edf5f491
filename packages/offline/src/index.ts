export * from './feature-loading.js';
export * from './event-log.js';
export * from './events-export.js';
export * from './events-report.js';
