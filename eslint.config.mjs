import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const SERVICES = ['ingest', 'fulfillment', 'sales', 'payouts'];
const noServiceImports = { group: SERVICES.map((s) => `@postsale/${s}`), message: 'services talk only through Kafka topics; packages never depend on a service' };

/**
 * Domain files that still import infrastructure (db/, clients/, knex…): the baseline of issue 14's refactor. A file
 * leaves this list when its use case takes ports instead; nothing new may join it.
 */
const DOMAIN_BASELINE = [
  'services/ingest/src/domain/erase-personal-data.use-case.ts',
  'services/ingest/src/domain/integrity.use-case.ts',
  'services/ingest/src/domain/process-delivery.use-case.ts',
  'services/ingest/src/domain/receive-delivery.use-case.ts',
  'services/ingest/src/domain/record-order.use-case.ts',
  'services/ingest/src/domain/sellers.use-case.ts',
  'services/payouts/src/domain/admin-queries.ts',
  'services/payouts/src/domain/context.ts',
  'services/payouts/src/domain/intents.use-case.ts',
  'services/payouts/src/domain/reconcile.use-case.ts',
  'services/payouts/src/domain/submit-batches.use-case.ts',
];

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
    ignores: DOMAIN_BASELINE,
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
