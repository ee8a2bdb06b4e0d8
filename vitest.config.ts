import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{proto,client,node,cli,bench,operator,e2e,scripts}/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
