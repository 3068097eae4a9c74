// Bounded LRU of review outcomes keyed by the token's SHA-256, each entry with its own expiry.
// It never holds a token: a leaked heap dump gives hashes, not credentials.

import type { Clock } from '../../time/index.ts';

export class ReviewCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAtMs: number }>();
  private readonly maxEntries: number;
  private readonly clock: Clock;

  constructor(maxEntries: number, clock: Clock) {
    this.maxEntries = maxEntries;
    this.clock = clock;
  }

  get size(): number {
    return this.entries.size;
  }

  get(sha256: string): V | undefined {
    const entry = this.entries.get(sha256);
    if (!entry) return undefined;
    this.entries.delete(sha256);
    if (entry.expiresAtMs <= this.clock.now()) return undefined;
    // Map keeps insertion order: re-inserting marks the entry most recently used.
    this.entries.set(sha256, entry);
    return entry.value;
  }

  set(sha256: string, value: V, expiresAtMs: number): void {
    if (expiresAtMs <= this.clock.now()) return;
    this.entries.delete(sha256);
    this.entries.set(sha256, { value, expiresAtMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  /** Drops everything (tests; a future admin "forget" call). */
  clear(): void {
    this.entries.clear();
  }
}
