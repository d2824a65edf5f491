export * from './config.js';
export * from './feature-app.js';
export * from './feature-service.js';
export * from './bulk-loader.js';
export * from './store/index.js';
