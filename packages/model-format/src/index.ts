export * from './inputs.js';
export * from './manifest.js';
export * from './versions.js';
