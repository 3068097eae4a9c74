// A clock that only moves when a test says so: advance() fires due timers in time order and lets
// promise chains settle between them, so a renewal's await chain runs before the next timer.

import { setImmediate as nextMacrotask } from 'node:timers/promises';
import type { Clock, Timer } from '../../src/time/index.ts';

interface Pending {
  readonly id: number;
  atMs: number;
  readonly fn: () => void;
  readonly intervalMs?: number;
}

export class FakeClock implements Clock {
  #nowMs: number;
  #nextId = 0;
  readonly #pending = new Map<number, Pending>();

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    return this.#add({ id: this.#nextId++, atMs: this.#nowMs + Math.max(0, delayMs), fn });
  }

  every(intervalMs: number, fn: () => void): Timer {
    return this.#add({ id: this.#nextId++, atMs: this.#nowMs + intervalMs, fn, intervalMs: Math.max(1, intervalMs) });
  }

  /** Timers not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.#pending.size;
  }

  /** When the next timer is due, or undefined if none is. */
  get nextTimerAtMs(): number | undefined {
    let at: number | undefined;
    for (const p of this.#pending.values()) if (at === undefined || p.atMs < at) at = p.atMs;
    return at;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due, in order, and letting promise
   * chains settle after each; ends with one turn of the event loop for callbacks already queued.
   */
  async advance(ms: number): Promise<void> {
    const endMs = this.#nowMs + ms;
    await flushMicrotasks();
    for (;;) {
      const due = this.#earliestDue(endMs);
      if (!due) break;
      this.#nowMs = Math.max(this.#nowMs, due.atMs);
      if (due.intervalMs !== undefined) due.atMs += due.intervalMs;
      else this.#pending.delete(due.id);
      due.fn();
      await flushMicrotasks();
    }
    this.#nowMs = endMs;
    await nextMacrotask();
    await flushMicrotasks();
  }

  #earliestDue(endMs: number): Pending | undefined {
    let best: Pending | undefined;
    for (const p of this.#pending.values()) {
      if (p.atMs <= endMs && (!best || p.atMs < best.atMs || (p.atMs === best.atMs && p.id < best.id))) best = p;
    }
    return best;
  }

  #add(p: Pending): Timer {
    this.#pending.set(p.id, p);
    return { cancel: () => void this.#pending.delete(p.id) };
  }
}

/** Lets promise chains that need no I/O run to their end (each await is one microtask hop). */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}
