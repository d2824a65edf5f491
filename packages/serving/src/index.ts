export * from './feature-loading.js';
export * from './feature-reader.js';
export * from './feature-rows.js';
export * from './feeds.js';
export * from './model-repository.js';
export * from './model-watcher.js';
export * from './onnx-session.js';
export * from './user-tower.js';
