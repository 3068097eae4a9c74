// CPU accounting for the rotation benchmark: this thread, the whole bench process, the handshake
// workers (reported by them), meshca serve and the machine (/proc), so a figure can be read against
// what else was running. Linux only; elsewhere the /proc figures are NaN.

import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fmt } from './report.ts';

export interface CpuSample {
  atMs: number;
  /** µs of CPU: the agents' (main) thread, every thread of the bench process, the handshake workers, meshca serve. */
  agentsUs: number;
  benchUs: number;
  workersUs: number;
  serveUs: number;
  /** µs the whole machine spent not idle, from /proc/stat. */
  machineBusyUs: number;
}

const TICK_US = 10_000;

function procTicks(path: string, fields: (parts: string[]) => number): number {
  try {
    return fields(readFileSync(path, 'utf8').trim().split(/\s+/)) * TICK_US;
  } catch {
    return NaN;
  }
}

export function cpuSample(workersUs: number, servePid: number | undefined): CpuSample {
  const main = process.threadCpuUsage();
  const all = process.cpuUsage();
  return {
    atMs: performance.now(),
    agentsUs: main.user + main.system,
    benchUs: all.user + all.system,
    workersUs,
    // /proc/<pid>/stat: utime and stime are fields 14 and 15 (after the command name).
    serveUs: procTicks(`/proc/${servePid}/stat`, (p) => Number(p[13]) + Number(p[14])),
    // /proc/stat "cpu" line: user nice system idle iowait irq softirq steal.
    machineBusyUs: procTicks('/proc/stat', (p) => Number(p[1]) + Number(p[2]) + Number(p[3]) + Number(p[6]) + Number(p[7]) + Number(p[8])),
  };
}

export function describeCpu(a: CpuSample, b: CpuSample): string {
  const s = (b.atMs - a.atMs) / 1000;
  const cores = (us: number) => fmt(us / 1e6 / s, 2);
  const otherBench = b.benchUs - a.benchUs - (b.agentsUs - a.agentsUs) - (b.workersUs - a.workersUs);
  const ours = b.benchUs - a.benchUs + (b.serveUs - a.serveUs || 0);
  return (
    `handshake threads ${cores(b.workersUs - a.workersUs)}, agents' thread ${cores(b.agentsUs - a.agentsUs)}, meshca serve ${cores(b.serveUs - a.serveUs)}, ` +
    `the bench's other threads (GC, libuv) ${cores(otherBench)}, other processes on the machine ${cores(Math.max(0, b.machineBusyUs - a.machineBusyUs - ours))} ` +
    `(cores of ${os.availableParallelism()})`
  );
}
