// `npm run build` (run by `prepare` on npm install): dist/ is src/ as JavaScript that runs without
// the type stripper, with its relative imports pointing at .js files.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/serve.ts';

const OUT = `.tmp-build-${process.pid}`;
const outDir = join(REPO_ROOT, OUT);
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('the JavaScript build', () => {
  it('writes every src/ module as .js with relative imports rewritten, and `meshca version` runs from it', () => {
    const build = spawnSync(process.execPath, ['scripts/build.js', OUT], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(build.status, build.stderr).toBe(0);
    const sources = files(join(REPO_ROOT, 'src')).filter((f) => f.endsWith('.ts')).length;
    const built = files(outDir).filter((f) => f.endsWith('.js'));
    expect(built).toHaveLength(sources);
    expect(existsSync(join(outDir, '.built'))).toBe(true);
    for (const file of built) expect(readFileSync(file, 'utf8'), file).not.toMatch(/(from|import)\s*\(?\s*['"]\.{1,2}\/[^'"]+\.ts['"]/);
    const script = `const { main } = await import('./${OUT}/cli/main.js'); process.exitCode = await main(['version']);`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^meshca \d+\.\d+\.\d+/);
  });

  it('refuses, naming the fix, to run src/ where Node has no WebAssembly for the type stripper (--jitless, as the agent in a pod)', () => {
    const root = mkdtempSync(join(tmpdir(), 'meshca-bin-'));
    try {
      mkdirSync(join(root, 'bin'));
      mkdirSync(join(root, 'src', 'cli'), { recursive: true });
      copyFileSync(join(REPO_ROOT, 'bin/meshca.js'), join(root, 'bin/meshca.js'));
      writeFileSync(join(root, 'src/cli/main.ts'), 'export async function main(): Promise<number> { return 0; }\n');
      const run = spawnSync(process.execPath, ['--jitless', join(root, 'bin/meshca.js'), 'version'], { encoding: 'utf8' });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('run "npm run build"');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
