// Where `serve`'s memory goes under load: samples its /metrics (prom-client's Node.js defaults:
// RSS, V8 heap spaces, external memory) while a phase runs and keeps the sample
// taken at the highest RSS. What RSS holds beyond those is native: TLS, HTTP/2, SQLite, malloc.

export interface MemorySample {
  readonly rssMb: number;
  /** V8 heap space → committed MB (new_space, old_space, code_space, large_object_space, …). */
  readonly spacesMb: Record<string, number>;
  readonly heapUsedMb: number;
  /** Memory V8 is told about outside its heap: Buffers and ArrayBuffers among them. */
  readonly externalMb: number;
}

const MB = 1024 * 1024;

function parse(text: string): MemorySample {
  const value = (name: string) => Number(new RegExp(`^${name} ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? NaN) / MB;
  const spacesMb: Record<string, number> = {};
  for (const m of text.matchAll(/^nodejs_heap_space_size_total_bytes\{space="(\w+)"\} ([0-9.e+]+)/gm)) spacesMb[m[1]!] = Number(m[2]) / MB;
  return {
    rssMb: value('process_resident_memory_bytes'),
    spacesMb,
    heapUsedMb: value('nodejs_heap_size_used_bytes'),
    externalMb: value('nodejs_external_memory_bytes'),
  };
}

/** Polls http://<httpAddress>/metrics every `everyMs` until stopped; resolves to the sample at peak RSS. */
export function sampleServeMemory(httpAddress: string, everyMs = 500): { stop: () => Promise<MemorySample | undefined> } {
  let peak: MemorySample | undefined;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const s = parse(await (await fetch(`http://${httpAddress}/metrics`)).text());
        if (!peak || s.rssMb > peak.rssMb) peak = s;
      } catch {
        // the server may be closing
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peak;
    },
  };
}

export function describeMemory(s: MemorySample): string {
  const spaces = Object.entries(s.spacesMb)
    .filter(([, mb]) => mb >= 0.5)
    .map(([space, mb]) => `${space.replace(/_space$/, '')} ${mb.toFixed(0)}`)
    .join(', ');
  const heapTotal = Object.values(s.spacesMb).reduce((a, b) => a + b, 0);
  return `RSS ${s.rssMb.toFixed(0)} MB = V8 heap ${heapTotal.toFixed(0)} (${spaces}; used ${s.heapUsedMb.toFixed(0)}) + external ${s.externalMb.toFixed(0)} + native/other ${(s.rssMb - heapTotal - s.externalMb).toFixed(0)}`;
}
