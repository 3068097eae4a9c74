// The real-time soak tests (`npm run test:soak`): slow on purpose, so not part of `npm test`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/soak/**/*.soak.ts'],
    setupFiles: ['test/setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 30_000,
  },
});
