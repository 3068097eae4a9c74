// Issue 12, Low: `agent --output-dir` used to follow the umask (0777 under umask 000). Now the
// directory is 0750 and the files 0600 (key) and 0644 (certificates) whatever the umask.

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { agentWithCa, envoyStream, type Cleanups } from '../agent/harness.ts';

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const modeOf = (path: string) => statSync(path).mode & 0o777;

describe('agent --output-dir modes', () => {
  it.each([0o000, 0o077])('makes the directory 0750, tls.key 0600, tls.crt and ca.crt 0644 under umask %o', async (umask) => {
    const old = process.umask(umask);
    let out: string;
    try {
      const { dir, agent } = await agentWithCa(cleanups, { outputDir: join('out', 'certs') });
      out = join(dir, 'out', 'certs');
      await envoyStream(cleanups, agent).responses.waitFor(1);
    } finally {
      process.umask(old);
    }
    expect(modeOf(out)).toBe(0o750);
    expect(modeOf(join(out, 'tls.key'))).toBe(0o600);
    expect(modeOf(join(out, 'tls.crt'))).toBe(0o644);
    expect(modeOf(join(out, 'ca.crt'))).toBe(0o644);
  });
});
