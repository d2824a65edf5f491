export * from './feature-rows.js';
export * from './feeds.js';
export * from './item-cache.js';
export * from './item-rows-wire.js';
export * from './item-table.js';
// Model versions are read through the model format's one reader.
export {
  type ItemVectors,
  latestModelVersion,
  loadModelVersion,
  ModelLoadError,
  type ModelVersion,
  readItemVectors,
} from '@recsys/model-format';
export * from './model-watcher.js';
export * from './onnx-session.js';
export * from './user-tower.js';
