export * from './channels/channel.js';
export * from './config.js';
export * from './index-builder.js';
export * from './index-source.js';
export * from './merge.js';
export * from './retrieval-app.js';
export * from './retrieval-service.js';
export * from './serving-index.js';
