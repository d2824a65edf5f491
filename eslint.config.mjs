// @ts-check
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['models/**', '**/dist/**', '**/node_modules/**', '**/src/gen/**', 'coverage/**', '.tools/**', '.data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  // Wire-level code takes protobuf field numbers from the generated descriptors (@recsys/contracts fieldNumber,
  // fieldTag), never from literals: a renumbered field must not go unnoticed. Production code outside the contracts.
  {
    files: ['packages/*/src/**/*.ts', 'services/*/src/**/*.ts'],
    ignores: ['**/*.spec.ts', 'packages/contracts/**', 'packages/testing/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "BinaryExpression[operator='<<'][left.type='Literal'][right.value=3]",
          message: 'A protobuf tag from a literal field number: take it from the descriptor (fieldTag / fieldNumber in @recsys/contracts).',
        },
        {
          selector: "CallExpression[callee.property.name='tag'][arguments.0.type='Literal']",
          message: 'A protobuf tag from a literal field number: take it from the descriptor (fieldNumber in @recsys/contracts).',
        },
        {
          selector: "CallExpression[callee.name='tag'][arguments.0.type='Literal']",
          message: 'A protobuf tag from a literal field number: take it from the descriptor (fieldTag in @recsys/contracts).',
        },
        {
          selector: "VariableDeclarator[id.name=/^[A-Z_]+$/][init.type='Literal'][init.raw=/^0x[0-7][0-9a-f]$/i]",
          message: 'A hex constant that looks like a protobuf tag: take it from the descriptor (fieldTag in @recsys/contracts).',
        },
      ],
    },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: {
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        console: 'readonly',
        __dirname: 'readonly',
        globalThis: 'readonly',
        fetch: 'readonly',
        AbortSignal: 'readonly',
      },
    },
  },
  // CommonJS config and harness files load their dependencies with require().
  { files: ['**/*.{js,cjs}'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
  prettier,
);
