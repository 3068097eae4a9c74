// `meshca serve --workers 2` never half-starts: a worker that cannot start fails the whole start,
// with the worker's own error as the one line, and the primary gives its side port back; SIGTERM
// while the workers are still starting stops all of them and exits 0.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeNet, listenOn, runMeshca, startServeUntilFirstLine, tempDir } from '../helpers/serve.ts';

/** Processes whose command line names `text` (a test's own key directory). */
function processesNaming(text: string): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text) ? [Number(pid)] : [];
    } catch {
      return [];
    }
  });
}

const dir = tempDir();
afterAll(() => dir.cleanup());

describe('meshca serve --workers 2 start-up', () => {
  it('fails the whole start when a worker cannot bind the gRPC port, leaving nothing listening', async () => {
    const taken = await listenOn(0);
    const httpProbe = await listenOn(0);
    const httpPort = (httpProbe.address() as { port: number }).port;
    await closeNet(httpProbe);
    try {
      const r = await runMeshca(['serve', '--keys', join(dir.path, 'keys'), '--db', `sqlite:${join(dir.path, 'ledger.db')}`, '--workers', '2', '--listen', `127.0.0.1:${(taken.address() as { port: number }).port}`, '--http-listen', `127.0.0.1:${httpPort}`]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/\nmeshca serve: --listen 127\.0\.0\.1:\d+: cannot listen \(EADDRINUSE\)\n$/);
      expect(r.stderr).not.toContain('meshca serve listening');
      // The side port the primary had bound is free again.
      await closeNet(await listenOn(httpPort));
    } finally {
      await closeNet(taken);
    }
  });

  it('honours SIGTERM while the workers are still starting: every process exits, 0', async () => {
    const keys = join(dir.path, 'keys-sigterm');
    // The first line (the development CA, made by the primary) comes before any worker is forked.
    const serve = await startServeUntilFirstLine(['--keys', keys, '--db', `sqlite:${join(dir.path, 'sigterm.db')}`, '--workers', '2']);
    try {
      serve.child.kill('SIGTERM');
      expect(await serve.exited).toBe(0);
      expect(serve.output()).not.toContain('meshca serve listening');
      expect(processesNaming(keys)).toEqual([]);
    } finally {
      serve.child.kill('SIGKILL');
    }
  });
});
