// `npm run bench`: runs every benchmark in turn (or those named: npm run bench -- issuance) and
// updates docs/performance.md. Each benchmark is a module in bench/ exporting run().

import 'reflect-metadata';

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
