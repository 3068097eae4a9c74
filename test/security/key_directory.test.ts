// Issue 12, Low: a key directory or key file another user can write is refused with the fix. A
// group/other-writable directory used to let another user swap in their own intermediate, which
// serve reloaded and signed with.

import { chmodSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../fakes/clock.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { startTestCa, tempDir } from '../helpers/serve.ts';
import { cli } from './cli.ts';

let work: { path: string; cleanup: () => void };
let keys: string;
let csrFile: string;

beforeEach(async () => {
  work = tempDir();
  keys = join(work.path, 'keys');
  csrFile = join(work.path, 'w.csr');
  writeFileSync(csrFile, opensslCsr('ec-p256').csrPem);
  expect((await cli(['ca', 'init', '--keys', keys])).code).toBe(0);
});
afterEach(() => work.cleanup());

const sign = () => cli(['sign', '--keys', keys, '--csr', csrFile, '--id', 'spiffe://cluster.local/ns/a/sa/b', '--db', 'memory:']);

describe('a key directory others can write', () => {
  it('refuses a group- or other-writable key directory, naming the chmod that fixes it', async () => {
    chmodSync(keys, 0o777);
    const r = await sign();
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`${keys} is writable by group or others \\(mode 0777\\).*run "chmod go-w ${keys}"`));
    await expect(startTestCa([], { keysDir: keys })).rejects.toThrow(/is writable by group or others/);
    chmodSync(keys, 0o750);
    expect((await sign()).code).toBe(0);
  });

  it('refuses a group-writable certificate file', async () => {
    chmodSync(join(keys, 'ca-cert.pem'), 0o664);
    expect((await sign()).stderr).toMatch(/ca-cert\.pem is writable by group or others \(mode 0664\).*chmod go-w/);
  });

  it('a running serve refuses to reload a key store that became writable by others, and keeps signing with what it had', async () => {
    const clock = new FakeClock(Date.now());
    const ca = await startTestCa([], { keysDir: keys, clock });
    try {
      const before = ca.server.context.state.authority.keyId;
      chmodSync(keys, 0o777);
      const later = new Date(Date.now() + 5000);
      utimesSync(join(keys, 'ca-cert.pem'), later, later); // a change the poll notices
      await clock.advance(2000);
      expect(ca.server.context.state.authority.keyId).toBe(before);
      expect(ca.logs.some((l) => /cannot be loaded yet/.test(String(l.msg)) && /writable by group or others/.test(String(l.reason)))).toBe(true);
    } finally {
      chmodSync(keys, 0o750);
      await ca.stop();
    }
  });

  it('ca init makes the key directory without group or other write, whatever the umask', async () => {
    const old = process.umask(0);
    try {
      const fresh = join(work.path, 'fresh');
      expect((await cli(['ca', 'init', '--keys', fresh])).code).toBe(0);
      expect((await cli(['sign', '--keys', fresh, '--csr', csrFile, '--id', 'spiffe://cluster.local/ns/a/sa/b', '--db', 'memory:'])).code).toBe(0);
    } finally {
      process.umask(old);
    }
  });
});
