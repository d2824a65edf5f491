export * from './feature-loading.js';
