export * from './processes.js';
export * from './redis-server.js';
export * from './trained-models.js';
export * from './redis-cluster.js';
