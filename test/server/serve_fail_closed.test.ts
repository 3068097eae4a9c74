// Fail closed at start: when the HTTP port cannot be had after the gRPC port was bound, serve
// refuses to start and gives back everything it had started, the gRPC port first among them.

import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import { serveConfigFrom, SERVE_OPTIONS, startCaServer } from '../../src/server/index.ts';
import { systemClock } from '../../src/time/index.ts';
import { closeNet, listenOn, tempDir } from '../helpers/serve.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});



describe('serve that cannot listen', () => {
  it('stops the bound gRPC port and rethrows when the HTTP port is taken', async () => {
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const taken = await listenOn(0);
    cleanups.push(() => closeNet(taken));
    const httpPort = (taken.address() as { port: number }).port;
    const probe = await listenOn(0);
    const grpcPort = (probe.address() as { port: number }).port;
    await closeNet(probe);

    const logged: string[] = [];
    const log = createLogger('debug', new Writable({ write: (chunk, _enc, cb) => (logged.push(String(chunk)), cb()) }));
    const { values } = loadSettings(
      SERVE_OPTIONS,
      ['--keys', join(dir.path, 'keys'), '--db', `sqlite:${join(dir.path, 'ledger.db')}`, '--listen', `127.0.0.1:${grpcPort}`, '--http-listen', `127.0.0.1:${httpPort}`],
      {},
    );
    await expect(startCaServer(serveConfigFrom(values), { clock: systemClock, log })).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(/^--http-listen 127\.0\.0\.1:\d+: cannot listen \(EADDRINUSE\)/) });

    // The gRPC port was bound before the HTTP bind failed; it must be free again.
    const again = await listenOn(grpcPort);
    await closeNet(again);
    expect(logged.join('')).toContain('issued the CA serving certificate');
    expect(logged.join('')).not.toContain('meshca serve listening');
  });
});
