// The CPUs this process may use, for `--workers auto`: the CPUs it may run on
// (os.availableParallelism(), which follows the affinity mask) capped by its cgroup's CPU quota,
// which is what a container's or pod's CPU limit sets. Without the cap, `auto` in a pod limited to
// 2 CPUs on a 64-core node would fork 64 workers that the quota then throttles.

import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { posix } from 'node:path';

export interface CgroupPaths {
  /** Where the cgroup filesystems are mounted (`/sys/fs/cgroup`). */
  readonly root: string;
  /** This process's cgroup membership (`/proc/self/cgroup`). */
  readonly self: string;
}

const SYSTEM_CGROUPS: CgroupPaths = { root: '/sys/fs/cgroup', self: '/proc/self/cgroup' };

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** `dir` and its ancestors up to `top`, deepest first. */
function upTo(top: string, path: string): string[] {
  const dirs: string[] = [];
  for (let p = posix.normalize(`/${path}`); ; p = posix.dirname(p)) {
    dirs.push(posix.join(top, p));
    if (p === '/') return dirs;
  }
}

/** cgroup v2 `cpu.max`: "<quota> <period>" or "max <period>". */
function v2Limit(dir: string): number | undefined {
  const m = /^(\d+|max)\s+(\d+)$/.exec(readText(posix.join(dir, 'cpu.max')) ?? '');
  if (!m || m[1] === 'max' || Number(m[2]) === 0) return undefined;
  return Number(m[1]) / Number(m[2]);
}

/** cgroup v1 `cpu.cfs_quota_us` (-1: none) over `cpu.cfs_period_us`. */
function v1Limit(dir: string): number | undefined {
  const quota = Number(readText(posix.join(dir, 'cpu.cfs_quota_us')) ?? NaN);
  const period = Number(readText(posix.join(dir, 'cpu.cfs_period_us')) ?? NaN);
  if (!(quota > 0) || !(period > 0)) return undefined;
  return quota / period;
}

/**
 * The tightest CPU quota over this process's cgroup and the ancestors it can see, in CPUs (1.5 for
 * "150000 100000"); undefined when there is none or the files cannot be read. A container usually
 * sees its own cgroup as the mount's root (cgroup namespaces), so the root is read too.
 */
export function cgroupCpuLimit(paths: CgroupPaths = SYSTEM_CGROUPS): number | undefined {
  const limits: number[] = [];
  for (const line of (readText(paths.self) ?? '').split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (controllers === undefined || path === undefined) continue;
    if (controllers === '') {
      // v2 (unified): mounted at the root, or under `unified` on a hybrid host.
      const top = existsSync(posix.join(paths.root, 'cgroup.controllers')) ? paths.root : posix.join(paths.root, 'unified');
      for (const dir of upTo(top, path)) limits.push(v2Limit(dir) ?? Infinity);
    } else if (controllers.split(',').includes('cpu')) {
      const top = [posix.join(paths.root, 'cpu'), posix.join(paths.root, controllers)].find((d) => existsSync(d));
      if (top) for (const dir of upTo(top, path)) limits.push(v1Limit(dir) ?? Infinity);
    }
  }
  const limit = Math.min(...limits);
  return Number.isFinite(limit) ? limit : undefined;
}

/** `--workers auto`: one per CPU this process may use, a fractional quota rounded up, at least 1. */
export function autoWorkers(opts: { cpus?: number; cgroupLimit?: number | undefined; max: number }): number {
  const cpus = opts.cpus ?? availableParallelism();
  const limit = 'cgroupLimit' in opts ? opts.cgroupLimit : cgroupCpuLimit();
  return Math.max(1, Math.min(cpus, limit === undefined ? Infinity : Math.ceil(limit), opts.max));
}
