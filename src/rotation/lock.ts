// An exclusive lock on the key store: a lock file created with O_EXCL, so two processes (or two
// replicas on a shared volume) never run a transition at once. Never holds key material. Its waits
// are wall-clock on purpose, not the injected Clock: they wait on another process, which a test's
// fake clock does not drive.

import { closeSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { MeshcaError } from '../errors/index.ts';

/** A holder that has not finished in this long has died; its lock may be broken. */
export const STALE_LOCK_MS = 60_000;
const RETRY_MS = 25;
export const LOCK_WAIT_MS = 15_000;

interface LockRecord {
  pid: number;
  host: string;
  atMs: number;
}

function isDead(path: string): boolean {
  let rec: LockRecord;
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
    rec = JSON.parse(readFileSync(path, 'utf8')) as LockRecord;
  } catch {
    // Gone already, or half written by a holder that is writing it right now.
    return false;
  }
  if (Date.now() - mtimeMs > STALE_LOCK_MS) return true;
  if (rec.host !== hostname()) return false;
  try {
    process.kill(rec.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function tryCreate(path: string): boolean {
  try {
    const fd = openSync(path, 'wx', 0o600);
    try {
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), atMs: Date.now() } satisfies LockRecord));
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Runs `fn` holding the lock at `path`; waits up to LOCK_WAIT_MS for another holder to finish. */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  while (!tryCreate(path)) {
    if (isDead(path)) {
      // Rename first: of two processes breaking the same stale lock, only one succeeds.
      const grave = `${path}.${randomBytes(4).toString('hex')}.stale`;
      try {
        renameSync(path, grave);
        unlinkSync(grave);
      } catch {
        // Someone else broke it first.
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new MeshcaError('ROTATION_REFUSED', `the key store is locked by another meshca process (${path}); try again, or remove the file if no meshca is running`);
    }
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(path);
    } catch {
      // Broken by someone who thought we were dead; nothing more to release.
    }
  }
}
