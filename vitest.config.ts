import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    pool: 'forks',
    // vitest's default is one worker per core minus one: on a 2-core machine that runs the files
    // one after another, while most of them wait on sockets, child processes and openssl. Four
    // workers overlap those waits (measured on 2 cores: 122 s with the default, 61 s with 4).
    maxWorkers: 4,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: process.env.MESHCA_TEST_JSON ? ['default', ['json', { outputFile: process.env.MESHCA_TEST_JSON }]] : ['default'],
  },
});
