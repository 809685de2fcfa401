import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'athanor-data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        performance: 'readonly',
      },
    },
  },
  {
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['src/**'],
    ignores: [
      'src/store/dialects/**',
      'src/ops/backup/snapshot-*',
      'src/ops/pitr/sqlite-*',
      'src/ops/pitr/pgbackrest.ts',
    ],
    rules: {
      // Only the dialect files know which database is underneath (docs/architecture.md, Layers).
      'no-restricted-imports': [
        'error',
        { paths: ['better-sqlite3', 'pg'], patterns: ['**/dialects/sqlite*', '**/dialects/postgres*'] },
      ],
    },
  },
  {
    files: ['src/domain/**'],
    rules: {
      // The domain is pure: no I/O, no outer layers.
      'no-restricted-imports': [
        'error',
        {
          paths: ['better-sqlite3', 'pg'],
          patterns: [
            'node:fs*',
            'node:net',
            'node:http*',
            'node:child_process',
            '../store/*',
            '../service/*',
            '../server/*',
          ],
        },
      ],
    },
  },
);
