export * from './vector-store.js';
export * from './errors.js';
export * from './versions.js';
export * from './exact-search.js';
export * from './synthetic-vectors.js';
export * from './build-input.js';
export {
  GRAPH_QUANTIZATIONS,
  HNSW_INDEX_FORMAT,
  INDEX_FILES,
  readMeta,
  type FileDigest,
  type GraphQuantization,
  type HnswIndexMeta,
  type HnswParams,
  type VerifyMode,
} from './index-files.js';
export * from './hnsw-store.js';
export * from './swappable-store.js';
export * from './embedded-watcher.js';
export * from './qdrant-store.js';
export * from './publish.js';
export type { SearchThreadStats } from './graph-search-threads.js';
