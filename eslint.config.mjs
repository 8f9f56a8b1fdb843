import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const SERVICES = ['ingest', 'fulfillment', 'sales', 'payouts'];
const noServiceImports = { group: SERVICES.map((s) => `@postsale/${s}`), message: 'services talk only through Kafka topics; packages never depend on a service' };

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.local/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // import boundaries: a package never imports a service, a service never imports another one
    files: ['packages/*/src/**/*.ts', 'bench/src/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [noServiceImports] }] },
  },
  ...SERVICES.map((service) => ({
    files: [`services/${service}/src/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ ...noServiceImports, group: noServiceImports.group.filter((g) => g !== `@postsale/${service}`) }] }],
    },
  })),
  {
    // dependencies point inward: the domain owns its ports and imports no infrastructure
    files: ['services/*/src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ['express', 'kafkajs', 'knex', 'pg'].map((name) => ({ name, message: 'the domain imports no infrastructure: declare a port in domain/ports.ts' })),
        patterns: [
          { group: ['../db', '../db/*', '../clients', '../clients/*', '../http', '../http/*', '../kafka', '../kafka/*'], message: 'the domain imports no infrastructure: declare a port in domain/ports.ts' },
          noServiceImports,
        ],
      }],
    },
  },
  {
    // CommonJS glue: jest configs, the CLI launcher, tooling
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { globals: globals.node, sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // ES-module tooling (the build script)
    files: ['**/*.mjs'],
    languageOptions: { globals: globals.node, sourceType: 'module' },
  },
);
