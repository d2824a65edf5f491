export * from './loop.js';
export * from './simulator.js';
export * from './world.js';
