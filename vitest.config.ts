import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    setupFiles: ['test/setup.ts'],
    pool: 'forks',
    // vitest's default is one worker per core minus one: on a 2-core machine that runs the files
    // one after another, while most of them wait on sockets, child processes and openssl. Four
    // workers overlap those waits (measured on 2 cores: 122 s with the default, 61 s with 4).
    maxWorkers: 4,
    // Each worker evaluates shared modules (grpc-js, the protos, asn1 schemas) once instead of once
    // per file: the suite's CPU time halves (measured on 2 cores: 108 s → 48 s wall). Test files
    // hold no module-level state that another file could see: time is an injected Clock, and
    // registries, ledgers and servers are made per test.
    isolate: false,
    projects: [
      { extends: true, test: { name: 'meshca', include: ['test/**/*.test.ts'], exclude: ['test/pkcs11/**'] } },
      // SoftHSM reads SOFTHSM2_CONF once per process (at the first C_Initialize), and each PKCS#11
      // test file makes its own token directory: these files need a process each.
      { extends: true, test: { name: 'pkcs11', include: ['test/pkcs11/**/*.test.ts'], isolate: true } },
    ],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: process.env.MESHCA_TEST_JSON ? ['default', ['json', { outputFile: process.env.MESHCA_TEST_JSON }]] : ['default'],
  },
});
