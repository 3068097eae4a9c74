// `meshca serve --workers 2` never half-starts: a worker that cannot start fails the whole start,
// with the worker's own error as the one line, and the primary gives its side port back.

import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeNet, listenOn, runMeshca, tempDir } from '../helpers/serve.ts';

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
});
