// One jest run for unit specs (beside the code) and integration/e2e tests (under test/).
// A real redis-server is started once on a free port by the global setup.
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: '<rootDir>/test/harness/node-environment.js',
  // onnx-buf (the ONNX protobuf definitions) ships ESM only: jest's CommonJS runtime needs it transformed.
  transform: { '^.+\\.ts$': swc, '/onnx-buf/.+\\.js$': swc },
  transformIgnorePatterns: ['/node_modules/(?!(\\.pnpm/onnx-buf[^/]*/node_modules/)?onnx-buf/)'],
  moduleNameMapper: {
    '^@recsys/(contracts|service-kit|testing|data|model-format|trainer|offline|serving|stage|vector-index|pipeline|simulator)$':
      '<rootDir>/packages/$1/src',
    '^@recsys/(features|retrieval|preranking|ranking|reranking|gateway)$': '<rootDir>/services/$1/src',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testMatch: ['<rootDir>/{packages,services}/*/src/**/*.spec.ts', '<rootDir>/test/{integration,e2e}/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
  reporters: ['default', '<rootDir>/test/harness/summary-reporter.js'],
  testTimeout: 30000,
  maxWorkers: 2,
};
