#!/usr/bin/env node
// `npm run build` (and `prepare`, so `npm install` runs it): writes dist/, the JavaScript that
// bin/meshca.js runs instead of src/ when it is current. Types are stripped with Node's own
// stripper (the one that runs src/ directly), so dist/ is src/ with the types blanked out and
// `.ts` import specifiers turned into `.js`. Running JavaScript spares each process the type
// stripper's memory (~27 MB of RSS in an agent; docs/performance.md). Plain JS: runs before any build.

import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SRC = join(ROOT, 'src');
/** `node scripts/build.js [dir]`: another output directory (tests); it must sit at the repository root like dist/. */
const DIST = process.argv[2] ? join(ROOT, process.argv[2]) : join(ROOT, 'dist');
/** Written last: bin/meshca.js uses dist/ only when this is newer than every file under src/. */
export const STAMP = '.built';

// Relative specifiers only ('./x.ts', '../y/index.ts'): packages are left alone.
const SPECIFIER = /((?:\bfrom|\bimport)\s*\(?\s*)(['"])(\.{1,2}\/[^'"\n]+?)\.ts\2/g;

function build(dir, out) {
  mkdirSync(out, { recursive: true });
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) {
      build(path, join(out, entry));
    } else if (entry.endsWith('.ts')) {
      const js = nodeModule.stripTypeScriptTypes(readFileSync(path, 'utf8'), { mode: 'strip' }).replace(SPECIFIER, '$1$2$3.js$2');
      writeFileSync(join(out, entry.slice(0, -3) + '.js'), js);
    }
  }
}

function main() {
  if (typeof nodeModule.stripTypeScriptTypes !== 'function') {
    process.stdout.write(`meshca build: this Node (${process.version}) has no module.stripTypeScriptTypes; bin/meshca.js will run src/ directly\n`);
    return;
  }
  try {
    statSync(SRC);
  } catch {
    process.stdout.write('meshca build: no src/ here (yet); nothing to build\n');
    return;
  }
  // The stripper is marked experimental; the warning says nothing a user can act on here.
  process.removeAllListeners('warning');
  rmSync(DIST, { recursive: true, force: true });
  build(SRC, DIST);
  writeFileSync(join(DIST, STAMP), `${new Date().toISOString()}\n`);
  process.stdout.write(`meshca build: ${relative(ROOT, SRC)}/ → ${relative(ROOT, DIST)}/\n`);
}

main();
