// Issue 12, Low: `agent --output-dir` used to follow the umask (0777 under umask 000). Now the
// directory is 0750 and the files 0600 (key) and 0644 (certificates) whatever the umask.

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../fakes/clock.ts';
import { EnvoyLikeStream, sdsClient } from '../sds/envoy_client.ts';
import { runTestAgent, scratchDir, startCa, writeToken } from '../agent/harness.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const modeOf = (path: string) => statSync(path).mode & 0o777;

describe('agent --output-dir modes', () => {
  it.each([0o000, 0o077])('makes the directory 0750, tls.key 0600, tls.crt and ca.crt 0644 under umask %o', async (umask) => {
    const scratch = scratchDir();
    cleanups.push(scratch.cleanup);
    const keysDir = join(scratch.path, 'keys');
    const clock = new FakeClock(Math.ceil(Date.now() / 1000) * 1000);
    const ca = await startCa(keysDir, undefined, clock);
    cleanups.push(() => ca.stop());
    await writeToken(keysDir, join(scratch.path, 'token'));
    const out = join(scratch.path, 'out', 'certs');
    const old = process.umask(umask);
    try {
      const agent = await runTestAgent({ caAddress: ca.server.grpcAddress, dir: scratch.path, rootCertPath: join(keysDir, 'root-cert.pem'), ttlMs: 3_600_000, outputDir: out, clock });
      cleanups.push(() => agent.stop());
      const client = sdsClient(`unix:${agent.socket}`);
      const stream = new EnvoyLikeStream(client, { names: ['default', 'ROOTCA'] });
      cleanups.push(() => {
        stream.close();
        client.close();
      });
      await stream.responses.waitFor(1);
    } finally {
      process.umask(old);
    }
    expect(modeOf(out)).toBe(0o750);
    expect(modeOf(join(out, 'tls.key'))).toBe(0o600);
    expect(modeOf(join(out, 'tls.crt'))).toBe(0o644);
    expect(modeOf(join(out, 'ca.crt'))).toBe(0o644);
  });
});
