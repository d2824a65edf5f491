// The stage layer: what the serving stages share on top of service-kit (feature reads, the passed-down user,
// the model stages' settings; candidates as bytes, read and written, are service-kit's). The model runtime (@recsys/serving) knows no transport.
export * from './feature-client.js';
export * from './feature-reader.js';
export * from './item-cache-env.js';
export * from './model-stage-env.js';
export * from './passed-user.js';
export * from './model-stage-app.js';
