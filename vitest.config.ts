import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// Files that start real processes or run seconds of load, longest first (from a run's durations).
// vitest starts the longest files first when it has their durations from an earlier run; a fresh
// clone (CI) has none and falls back to file size, which can leave these for the end of the run,
// where they run side by side and contend for the two cores: measured on 2 cores, 60 s wall and
// 110 CPU-s without the durations, 45 s and 84 CPU-s with them; without them but with this list,
// 39-52 s. Missing or stale entries only change the order.
const LONG_FILES = [
  'test/rotation/proof.test.ts',
  'test/server/serve_process.test.ts',
  'test/agent/agent_command.test.ts',
  'test/pki/csr.test.ts',
  'test/server/serve_cluster.test.ts',
  'test/ledger/sigkill.test.ts',
  'test/security/floods.test.ts',
  'test/cli/remote.test.ts',
  'test/architecture/serve_kube_modules.test.ts',
  'test/server/serve_cluster_start.test.ts',
  'test/ledger/ledger.test.ts',
  'test/distribution/leader.test.ts',
  'test/keystore/k8s_secret.test.ts',
  'test/authn/kubernetes_tokenreview.test.ts',
];

class LongFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    if (files.every((spec) => this.ctx.cache.getTestSpecificationResult(spec))) return sorted;
    const rank = (spec: TestSpecification) => {
      const i = LONG_FILES.indexOf(relative(spec.project.config.root, spec.moduleId));
      return i === -1 ? LONG_FILES.length : i;
    };
    // The base order keeps each project's files together; within each, listed files first (sort is
    // stable, so the others keep the base order).
    const groups = new Map<string, TestSpecification[]>();
    for (const spec of sorted) groups.set(spec.project.name, [...(groups.get(spec.project.name) ?? []), spec]);
    return [...groups.values()].flatMap((group) => group.sort((a, b) => rank(a) - rank(b)));
  }
}

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
    sequence: { sequencer: LongFilesFirst },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: process.env.MESHCA_TEST_JSON ? ['default', ['json', { outputFile: process.env.MESHCA_TEST_JSON }]] : ['default'],
  },
});
