// `--workers auto` counts the CPUs a pod's limit gives, not the node's cores: cgroup v2 and v1
// quota files read from a fake /sys/fs/cgroup tree, as a container and a host lay them out.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { autoWorkers, cgroupCpuLimit } from '../../src/server/cpu_limit.ts';
import { tempDir } from '../helpers/serve.ts';

const dir = tempDir();
afterAll(() => dir.cleanup());
let n = 0;

/** A fake cgroup mount and /proc/self/cgroup: `files` maps paths under the mount to contents. */
function cgroups(self: string, files: Record<string, string>) {
  const base = join(dir.path, `t${n++}`);
  const root = join(base, 'sys');
  mkdirSync(root, { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), `${text}\n`);
  }
  writeFileSync(join(base, 'self'), self);
  return { root, self: join(base, 'self') };
}

describe('the CPUs a cgroup allows', () => {
  it('cgroup v2: a container sees its own quota at the mount root; "max" is no limit', () => {
    expect(cgroupCpuLimit(cgroups('0::/\n', { 'cgroup.controllers': 'cpu memory', 'cpu.max': '150000 100000' }))).toBe(1.5);
    expect(cgroupCpuLimit(cgroups('0::/\n', { 'cgroup.controllers': 'cpu memory', 'cpu.max': 'max 100000' }))).toBeUndefined();
  });

  it('cgroup v2 on a host: the tightest of the process cgroup and its ancestors', () => {
    const paths = cgroups('0::/kubepods/pod1/ctr\n', {
      'cgroup.controllers': 'cpu',
      'kubepods/cpu.max': '800000 100000',
      'kubepods/pod1/cpu.max': '200000 100000',
      'kubepods/pod1/ctr/cpu.max': 'max 100000',
    });
    expect(cgroupCpuLimit(paths)).toBe(2);
  });

  it('cgroup v1: cfs quota over period from the cpu controller; -1 is no limit', () => {
    expect(cgroupCpuLimit(cgroups('4:memory:/\n2:cpu,cpuacct:/\n', { 'cpu,cpuacct/cpu.cfs_quota_us': '50000', 'cpu,cpuacct/cpu.cfs_period_us': '100000' }))).toBe(0.5);
    expect(cgroupCpuLimit(cgroups('2:cpu,cpuacct:/docker/abc\n', { 'cpu/cpu.cfs_quota_us': '-1', 'cpu/cpu.cfs_period_us': '100000', 'cpu/docker/abc/cpu.cfs_quota_us': '300000', 'cpu/docker/abc/cpu.cfs_period_us': '100000' }))).toBe(3);
    expect(cgroupCpuLimit(cgroups('2:cpu,cpuacct:/\n', { 'cpu/cpu.cfs_quota_us': '-1', 'cpu/cpu.cfs_period_us': '100000' }))).toBeUndefined();
  });

  it('unreadable or missing files mean no limit, never an error', () => {
    expect(cgroupCpuLimit({ root: join(dir.path, 'none'), self: join(dir.path, 'none', 'self') })).toBeUndefined();
    expect(cgroupCpuLimit(cgroups('garbage\n0::/\n', { 'cgroup.controllers': 'cpu', 'cpu.max': 'lots 100000' }))).toBeUndefined();
  });

  it('auto: the CPUs the process may run on, capped by the quota rounded up, at least one', () => {
    expect(autoWorkers({ cpus: 64, cgroupLimit: 2, max: 256 })).toBe(2);
    expect(autoWorkers({ cpus: 64, cgroupLimit: 1.5, max: 256 })).toBe(2);
    expect(autoWorkers({ cpus: 64, cgroupLimit: 0.25, max: 256 })).toBe(1);
    expect(autoWorkers({ cpus: 4, cgroupLimit: 16, max: 256 })).toBe(4);
    expect(autoWorkers({ cpus: 4, cgroupLimit: undefined, max: 256 })).toBe(4);
    expect(autoWorkers({ cpus: 512, cgroupLimit: undefined, max: 256 })).toBe(256);
  });
});
