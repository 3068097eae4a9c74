// Shared by every benchmark: print a section and write it into docs/performance.md between
// <!-- bench:NAME --> markers, so `npm run bench` keeps the document current.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

const DOC = new URL('../docs/performance.md', import.meta.url);

export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
}

export function writeSection(name: string, markdown: string): void {
  process.stdout.write(`\n${markdown}\n`);
  const begin = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${begin}\n${markdown.trim()}\n\n_Measured on ${machineLine()}._\n${end}`;
  let doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Performance\n\nFigures written by `npm run bench`.\n';
  const at = doc.indexOf(begin);
  const stop = doc.indexOf(end);
  if (at >= 0 && stop > at) doc = doc.slice(0, at) + block + doc.slice(stop + end.length);
  else doc = `${doc.trimEnd()}\n\n${block}\n`;
  writeFileSync(DOC, doc);
}

/** Calls `fn` back to back for `durationMs` after `warmup` calls (for the JIT); returns calls/s. */
export async function measureRate(fn: () => Promise<unknown>, durationMs: number, warmup = 200): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < durationMs) {
    await fn();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

export function percentile(sortedMs: readonly number[], p: number): number {
  if (sortedMs.length === 0) return NaN;
  return sortedMs[Math.min(sortedMs.length - 1, Math.floor((p / 100) * sortedMs.length))]!;
}

export function fmt(n: number | null | undefined, digits = 0): string {
  // NaN crosses IPC as null (JSON): a percentile of nothing.
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
