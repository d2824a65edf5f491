export * from './adaptive-counts.js';
export * from './budget.js';
export * from './config.js';
export * from './gateway-api.js';
export * from './gateway-app.js';
export * from './orchestrator.js';
