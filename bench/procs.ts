// What the benchmarks read about processes: CPU seconds and resident memory from /proc (Linux),
// the machine's load average, and the load generator child (bench/load_client.ts) over IPC.

import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { LoadPhase, LoadSetup, PhaseResult } from './load_client.ts';

const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcStats {
  /** user + system CPU seconds since the process started. */
  readonly cpuSeconds: number;
  readonly rssMb: number;
  /** Peak resident set (VmHWM) since the process started. */
  readonly peakRssMb: number;
}

export function procStats(pid: number): ProcStats {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at ") ".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { cpuSeconds, rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024 };
}

/** user + system CPU seconds of a process's main thread alone (its event loop), without its other threads. */
export function mainThreadCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

export interface SmapsRollup {
  readonly rssMb: number;
  /** Proportional set: each shared page divided among the processes mapping it. */
  readonly pssMb: number;
  /** Unique set (USS): pages no other process maps, what one more such process costs. */
  readonly privateMb: number;
  /** Pages shared with other processes (mostly the node binary's text, shared by every pod on a node using the same image). */
  readonly sharedMb: number;
}

export function smapsRollup(pid: number | 'self'): SmapsRollup {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rssMb: kb('Rss') / 1024,
    pssMb: kb('Pss') / 1024,
    privateMb: (kb('Private_Clean') + kb('Private_Dirty')) / 1024,
    sharedMb: (kb('Shared_Clean') + kb('Shared_Dirty')) / 1024,
  };
}

/** One-minute load average, to print beside every figure measured on this shared machine. */
export function loadAverage(): number {
  return os.loadavg()[0]!;
}

export interface LoadClient {
  phase(p: LoadPhase): Promise<PhaseResult>;
  close(): Promise<void>;
}

function request<T>(child: ChildProcess, msg: unknown, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Record<string, unknown>) => {
      child.off('message', onMessage);
      if (m.error) reject(new Error(`load generator: ${String(m.error)}`));
      else resolve(m[key] as T);
    };
    child.on('message', onMessage);
    child.send(msg as object);
  });
}

export async function startLoadClient(setup: LoadSetup): Promise<LoadClient> {
  const child = fork(new URL('./load_client.ts', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await request<boolean>(child, { setup }, 'ready');
  return {
    phase: (p) => request<PhaseResult>(child, { phase: p }, 'result'),
    close: async () => {
      child.send({ exit: true });
      await exited;
    },
  };
}
