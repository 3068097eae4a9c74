import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: process.env.MESHCA_TEST_JSON ? ['default', ['json', { outputFile: process.env.MESHCA_TEST_JSON }]] : ['default'],
  },
});
