import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Worker threads load dist/worker.mjs; `npm test` builds it first.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
