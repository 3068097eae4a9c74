// `meshca agent`'s code for *Footprint*'s day of renewals (bench/footprint.ts), in a process of its
// own that runs the JavaScript build under the injector's NODE_OPTIONS, as in a pod (plain
// JavaScript: --jitless leaves no WebAssembly for the type stripper). Time is a clock the bench
// steps from one timer to the next; before each renewal the bench moves the CA's clock (the CA
// runs in the bench) to this one's, so certificates are issued and checked at the same simulated
// time. Memory is read after two full GCs (--expose-gc), after the first certificate and at the
// end of each simulated day.

import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { startAgent } from '../dist/agent/index.js';
import { createLogger } from '../dist/observability/index.js';

const RENEWAL_TIMEOUT_MS = 10_000;

/** A clock that moves only when step() fires its earliest timer. */
class SteppingClock {
  #nowMs;
  #nextId = 0;
  #timers = new Map();

  constructor(nowMs) {
    this.#nowMs = nowMs;
  }

  now() {
    return this.#nowMs;
  }

  setTimer(delayMs, fn) {
    return this.#add({ atMs: this.#nowMs + Math.max(0, delayMs), fn });
  }

  every(intervalMs, fn) {
    return this.#add({ atMs: this.#nowMs + intervalMs, fn, intervalMs: Math.max(1, intervalMs) });
  }

  nextAtMs() {
    let at = Infinity;
    for (const t of this.#timers.values()) at = Math.min(at, t.atMs);
    return at;
  }

  step() {
    let id;
    let due;
    for (const [i, t] of this.#timers) if (!due || t.atMs < due.atMs) [id, due] = [i, t];
    this.#nowMs = Math.max(this.#nowMs, due.atMs);
    if (due.intervalMs === undefined) this.#timers.delete(id);
    else due.atMs += due.intervalMs;
    due.fn();
  }

  #add(timer) {
    const id = this.#nextId++;
    this.#timers.set(id, timer);
    return { cancel: () => void this.#timers.delete(id) };
  }
}

function memory() {
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  const smaps = readFileSync('/proc/self/smaps_rollup', 'utf8');
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(smaps)?.[1] ?? NaN);
  const mb = (bytes) => bytes / 2 ** 20;
  return {
    rssMb: mb(m.rss),
    pssMb: kb('Pss') / 1024,
    privateMb: (kb('Private_Clean') + kb('Private_Dirty')) / 1024,
    heapUsedMb: mb(m.heapUsed),
    heapTotalMb: mb(m.heapTotal),
    externalMb: mb(m.external),
  };
}

const realSleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once the bench has set the CA's clock to `nowMs`. */
function setCaClock(nowMs) {
  return new Promise((resolve) => {
    process.once('message', () => resolve());
    process.send({ caClock: nowMs });
  });
}

/** Waits (in real time) until the agent holds a certificate other than `notAfterMs`'s. */
async function nextCertificate(agent, notAfterMs) {
  const t0 = performance.now();
  while (agent.status().notAfterMs === notAfterMs) {
    const { consecutiveFailures, lastError } = agent.status();
    if (consecutiveFailures > 0) throw new Error(`renewal failed: ${lastError}`);
    if (performance.now() - t0 > RENEWAL_TIMEOUT_MS) throw new Error('no certificate within 10 s');
    await realSleep(1);
  }
}

async function run(o) {
  const clock = new SteppingClock(o.startMs);
  const discard = new Writable({ write: (_chunk, _enc, cb) => cb() });
  const running = await startAgent({
    caAddress: o.caAddress,
    caName: 'localhost',
    rootCertPath: o.rootCertPath,
    tokenFilePath: o.tokenPath,
    sdsSocketPath: o.socket,
    ttlMs: o.ttlMs,
    bundlePollMs: o.bundlePollMs,
    clock,
    log: createLogger('info', discard),
  });
  const { agent } = running;
  await nextCertificate(agent, undefined);
  process.send({ firstCertificate: true });
  await new Promise((resolve) => process.once('message', resolve)); // the bench's SDS client is connected
  const snapshots = [{ hours: 0, renewals: 0, ...memory() }];
  let renewals = 0;
  let timersFired = 0;
  const t0 = performance.now();
  for (let day = 1; day <= o.days; day++) {
    const endMs = o.startMs + day * 24 * 3_600_000;
    for (;;) {
      const { nextAttemptAtMs, notAfterMs } = agent.status();
      if (nextAttemptAtMs === undefined || nextAttemptAtMs > endMs) break;
      await setCaClock(nextAttemptAtMs);
      // Root-file polls up to the renewal, then the renewal itself.
      for (; clock.nextAtMs() <= nextAttemptAtMs; timersFired++) clock.step();
      await nextCertificate(agent, notAfterMs);
      renewals++;
    }
    snapshots.push({ hours: day * 24, renewals, ...memory() });
  }
  const wallMs = performance.now() - t0;
  await running.stop();
  process.send({ done: { snapshots, renewals, timersFired, wallMs } });
}

process.once('message', (m) => {
  run(m.start).catch((err) => {
    process.send({ error: String(err?.stack ?? err) });
  });
});
