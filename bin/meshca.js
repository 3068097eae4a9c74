#!/usr/bin/env node
// meshca's entry point. It runs dist/ (the JavaScript `npm run build` writes, which `npm install`
// runs through `prepare`) when that is newer than every file under src/, and src/ otherwise, so an
// edited source is never shadowed by a stale build. Node 22.18+ and 24 run the TypeScript sources
// directly; on 22.12–22.17 we re-run ourselves with --experimental-strip-types.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Newest modification time under dir (a few ms for src/'s ~200 files). */
function newestMs(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function distIsCurrent() {
  let builtMs;
  try {
    builtMs = statSync(join(ROOT, 'dist', '.built')).mtimeMs;
  } catch {
    return false;
  }
  try {
    return newestMs(join(ROOT, 'src')) <= builtMs;
  } catch {
    return true; // no src/: an installation that ships dist/ only
  }
}

/** Whether a Node/V8 option was given on the command line or in NODE_OPTIONS, spelt with - or _. */
function hasNodeOption(name) {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return given.some((arg) => arg.split('=')[0].replaceAll('_', '-') === name);
}

// `serve` under load lets V8 grow its young generation to two 64 MB semi-spaces: ~100 MB of RSS
// for garbage that dies young (docs/performance.md, *serve memory under load*). The agent, idle
// nearly always, needs 1 MB: 16 MB semi-spaces cost it ~7 MB of RSS, and ~9 KB per SDS stream
// when it serves thousands (*Footprint*). V8 reads the limit only when the process starts
// (v8.setFlagsFromString is too late), so these commands replace themselves once with the flag
// set: same process id, signals and stdio. An operator's own setting (or the injector's
// NODE_OPTIONS) wins.
const SEMI_SPACE_MB = { serve: 8, agent: 1 };
const semiSpaceMb = Object.hasOwn(SEMI_SPACE_MB, process.argv[2]) ? SEMI_SPACE_MB[process.argv[2]] : undefined;
if (semiSpaceMb !== undefined && typeof process.execve === 'function' && !hasNodeOption('--max-semi-space-size')) {
  process.execve(process.execPath, [process.execPath, `--max-semi-space-size=${semiSpaceMb}`, ...process.execArgv, ...process.argv.slice(1)]);
}

const useDist = distIsCurrent();
if (!useDist && typeof WebAssembly === 'undefined') {
  // Node strips types with a WebAssembly module; --jitless and --lite-mode (the agent's
  // NODE_OPTIONS in a pod) turn WebAssembly off, so only dist/ can run here.
  process.stderr.write('meshca: dist/ is missing or older than src/, and this Node runs without WebAssembly (--jitless or --lite-mode), which running src/ needs; run "npm run build"\n');
  process.exit(1);
}
if (!useDist && !process.features.typescript) {
  const r = spawnSync(process.execPath, ['--experimental-strip-types', '--no-warnings', ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
// grpc-js sets the TLS servername to the target host even when it is an IP address (e.g. our own
// 127.0.0.1:15012), and Node warns (DEP0123) on every such connection; the name is still verified.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const code = typeof rest[0] === 'object' ? rest[0]?.code : rest[1];
  if (code === 'DEP0123') return;
  return emitWarning.call(process, warning, ...rest);
};
const { main } = await import(useDist ? '../dist/cli/main.js' : '../src/cli/main.ts');
const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => controller.abort(new Error(sig)));
process.exitCode = await main(process.argv.slice(2), { signal: controller.signal });
