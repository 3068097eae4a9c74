// Private key files: written 0600 atomically, refused when group or others can read them.

import { spawn } from 'node:child_process';
import { chmodSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPublicKey } from 'node:crypto';
import { assertKeyTreeProtected, generateKeyPair, readOrCreatePrivateKeyFile, readPrivateKeyFile, writeFileAtomic, writePrivateKeyFile } from '../../src/pki/index.ts';
import { tempDir } from '../helpers/serve.ts';

const dirs: { cleanup: () => void }[] = [];
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));
function dir() {
  const d = tempDir();
  dirs.push(d);
  return d.path;
}

describe('private key files', () => {
  it('are written with mode 0600 and leave no temporary files behind', () => {
    const d = dir();
    const path = join(d, 'k.pem');
    writePrivateKeyFile(path, generateKeyPair().privateKey);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(d)).toEqual(['k.pem']);
    expect(readPrivateKeyFile(path).asymmetricKeyType).toBe('ec');
  });

  it('made on first use are made once: a key another process made meanwhile wins, and is never replaced', () => {
    const d = dir();
    const path = join(d, 'k.pem');
    const theirs = generateKeyPair().privateKey;
    const mine = generateKeyPair().privateKey;
    // The other process writes its key between our look and our link (the race of workers starting together).
    const got = readOrCreatePrivateKeyFile(path, () => {
      writePrivateKeyFile(path, theirs);
      return mine;
    });
    const pem = (k: Parameters<typeof createPublicKey>[0]) => createPublicKey(k).export({ format: 'pem', type: 'spki' });
    expect(pem(got)).toBe(pem(theirs));
    expect(pem(readPrivateKeyFile(path))).toBe(pem(theirs));
    expect(readdirSync(d)).toEqual(['k.pem']);
    // Made when missing, 0600, and read back as is afterwards.
    const other = join(d, 'other.pem');
    const made = readOrCreatePrivateKeyFile(other, () => mine);
    expect(pem(made)).toBe(pem(mine));
    expect(statSync(other).mode & 0o777).toBe(0o600);
    expect(pem(readOrCreatePrivateKeyFile(other, () => theirs))).toBe(pem(mine));
  });

  it("a key directory's check is not upset by another process writing in it (its temporary files come and go)", async () => {
    const d = dir();
    // Another process rewrites a file in a loop, as `root prepare` or `ca init` writes while a serve polls.
    const files = new URL('../../src/pki/files.ts', import.meta.url).href;
    const WRITES = 400;
    const writer = spawn(process.execPath, ['--input-type=module', '--no-warnings', '-e', `
      const { writeFileAtomic } = await import(${JSON.stringify(files)});
      let n = 0;
      for (; n < ${WRITES}; n++) writeFileAtomic(${JSON.stringify(join(d, 'f.pem'))}, 'x', 0o644);
      process.stdout.write(String(n));
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    writer.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => writer.on('exit', resolve));
    let done = false;
    void exited.then(() => (done = true));
    let checks = 0;
    try {
      while (!done) {
        for (let i = 0; i < 50; i++, checks++) assertKeyTreeProtected(d);
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      if (!done) writer.kill();
    }
    expect(await exited).toBe(0);
    // Both ran side by side (a count of writes, not a time, so a loaded machine only makes it slower): the
    // old check threw within ~100 checks of such a writer.
    expect(Number(out)).toBe(WRITES);
    expect(checks).toBeGreaterThan(100);
  });

  it('replace an existing file atomically', () => {
    const d = dir();
    const path = join(d, 'f');
    writeFileAtomic(path, 'one', 0o644);
    writeFileAtomic(path, 'two', 0o644);
    expect(readdirSync(d)).toEqual(['f']);
  });

  it.each([0o644, 0o640, 0o604])('a key file with mode %o is refused, naming the file and the fix', (mode) => {
    const d = dir();
    const path = join(d, 'ca-key.pem');
    writePrivateKeyFile(path, generateKeyPair().privateKey);
    chmodSync(path, mode);
    expect(() => readPrivateKeyFile(path)).toThrow(new RegExp(`private key ${path} is readable by group or others .*chmod 600 ${path}`));
  });

  it('a file that is not a key is refused without echoing its content', () => {
    const d = dir();
    const path = join(d, 'ca-key.pem');
    writeFileSync(path, 'SECRET-NOT-A-KEY', { mode: 0o600 });
    let message = '';
    try {
      readPrivateKeyFile(path);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/could not be read as a PEM private key/);
    expect(message).not.toContain('SECRET');
  });
});
