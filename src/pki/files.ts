// Files that hold keys and certificates: written atomically (temp file, fsync, rename) so a crash
// never leaves half a key; private keys created 0600 and refused on read if others can read them.

import { randomBytes } from 'node:crypto';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fchmodSync, fsyncSync, linkSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync, mkdirSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { MeshcaError } from '../errors/index.ts';

export const PRIVATE_FILE_MODE = 0o600;
export const PUBLIC_FILE_MODE = 0o644;
/** Directories meshca makes: never writable by group or others, whatever the umask. */
export const PRIVATE_DIR_MODE = 0o750;
/** The key directory's depth: rotation/roots/<key id>/<file>. */
const MAX_KEY_TREE_DEPTH = 4;

function modeText(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/**
 * Refuses a file or directory another user could write: one writable by group or others, or owned
 * by a user other than this one (or root). Another user who can write the key directory can swap
 * in their own intermediate, which a running serve would reload and sign with.
 */
export function assertOnlyOwnerWrites(path: string): void {
  const s = statSync(path);
  const uid = process.getuid?.();
  if (uid !== undefined && s.uid !== uid && s.uid !== 0) {
    throw new MeshcaError('BAD_KEY_FILE', `${path} is owned by uid ${s.uid}, not by this user (uid ${uid}) or root, so another user can change it; run "chown ${uid} ${path}"`);
  }
  if ((s.mode & 0o022) !== 0) {
    throw new MeshcaError('BAD_KEY_FILE', `${path} is writable by group or others (mode ${modeText(s.mode)}), so another user could replace the CA's keys; run "chmod go-w ${path}"`);
  }
}

/** The key directory and everything in it (rotation slots included) must be writable by this user only. */
export function assertKeyTreeProtected(dir: string, depth = 0): void {
  assertOnlyOwnerWrites(dir);
  if (depth >= MAX_KEY_TREE_DEPTH) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    try {
      if (entry.isDirectory()) assertKeyTreeProtected(path, depth + 1);
      else assertOnlyOwnerWrites(path);
    } catch (err) {
      // Gone between the listing and the check: another process's temporary file renamed into
      // place, or its lock released. What is no longer there cannot be swapped in.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** Writes `data` whole and synced to a fresh temporary file beside `path`, and returns its name. */
function writeSyncedTemp(path: string, data: string | Uint8Array, mode: number): string {
  const dir = dirname(path);
  // The modes are set explicitly: the umask may narrow (077) or widen (000) what open/mkdir give.
  if (mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE }) !== undefined) chmodSync(dir, PRIVATE_DIR_MODE);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    fchmodSync(fd, mode);
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  return tmp;
}

/** Makes a rename or link into `dir` durable too. */
function syncDirectory(dir: string): void {
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the data itself is already synced.
  }
}

/** Writes `data` to `path` so readers see either the old file or the whole new one. */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): void {
  renameSync(writeSyncedTemp(path, data, mode), path);
  syncDirectory(dirname(path));
}

/**
 * Reads the private key at `path`, or makes it with `make` if there is none. Processes that start
 * together (cluster workers, replicas on one key directory) all get the one key that won: the new
 * file is linked into place, which fails if another process linked its own first, never replaced.
 */
export function readOrCreatePrivateKeyFile(path: string, make: () => KeyObject): KeyObject {
  if (!existsSync(path)) {
    const tmp = writeSyncedTemp(path, make().export({ format: 'pem', type: 'pkcs8' }) as string, PRIVATE_FILE_MODE);
    try {
      linkSync(tmp, path);
      syncDirectory(dirname(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      unlinkSync(tmp);
    }
  }
  return readPrivateKeyFile(path);
}

export function writePrivateKeyFile(path: string, key: KeyObject): void {
  writeFileAtomic(path, key.export({ format: 'pem', type: 'pkcs8' }) as string, PRIVATE_FILE_MODE);
}

/** Refuses a private key file that group or others can read, naming the file and the fix. */
export function assertPrivateFileMode(path: string): void {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new MeshcaError(
      'BAD_KEY_FILE',
      `private key ${path} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); ` +
        `run "chmod 600 ${path}" (in Kubernetes, mount the Secret with defaultMode: 0400)`,
    );
  }
}

export function readPrivateKeyFile(path: string): KeyObject {
  assertPrivateFileMode(path);
  const pem = readFileSync(path, 'utf8');
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    // The parser's message is safe (it never includes key material), but keep ours generic.
    throw new MeshcaError('BAD_KEY_FILE', `private key ${path} could not be read as a PEM private key`, { cause: err });
  }
}
