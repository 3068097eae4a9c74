// `npm run bench`: runs every benchmark in turn (or those named: npm run bench -- issuance) and
// updates docs/performance.md. Each benchmark is a module in bench/ exporting run().

import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The benchmarks run `node bin/meshca.js`, which uses dist/ only while it is newer than src/: build
// it first, so a bench on an edited tree measures what `npm install` ships, not the type stripper.
execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build.js', import.meta.url))], { stdio: 'inherit' });

const BENCHES: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  issuance: () => import('./issuance.ts'),
  sds: () => import('./sds.ts'),
  e2e: () => import('./e2e.ts'),
  footprint: () => import('./footprint.ts'),
  tokenreview: () => import('./tokenreview.ts'),
  ledger: () => import('./ledger.ts'),
  rotation: () => import('./rotation.ts'),
  scaling: () => import('./scaling.ts'),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const [name, load] of Object.entries(BENCHES)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  process.stdout.write(`\n### bench: ${name}\n`);
  const mod = await load();
  await mod.run();
}
