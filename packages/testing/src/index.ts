export * from './processes.js';
export * from './redis-server.js';
