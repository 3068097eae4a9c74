#!/usr/bin/env node
// meshca's entry point. Node 22.18+ and 24 run the TypeScript sources directly; on 22.12–22.17 we
// re-run ourselves with --experimental-strip-types.
import { spawnSync } from 'node:child_process';

if (!process.features.typescript) {
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
const { main } = await import('../src/cli/main.ts');
const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => controller.abort(new Error(sig)));
process.exitCode = await main(process.argv.slice(2), { signal: controller.signal });
