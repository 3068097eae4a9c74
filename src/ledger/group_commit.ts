// Group commit: appends that arrive while a transaction is being written wait and go together in
// the next one, so durability costs one commit per batch, not per record. Never reorders a batch.

export interface Pending<T, R> {
  readonly item: T;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export interface Flushed<R> {
  readonly results: readonly R[];
  readonly durable: Promise<void>;
}

export class GroupCommit<T, R> {
  readonly #flush: (items: readonly T[]) => Promise<Flushed<R>>;
  readonly #maxBatch: number;
  #queue: Pending<T, R>[] = [];
  #running: Promise<void> | undefined;
  /** The last batch's durability, settled (never rejects). */
  #durable: Promise<void> = Promise.resolve();

  /**
   * `flush` writes the whole batch in one transaction and returns one result per item, in order.
   * The next batch may be written as soon as it resolves; the items themselves resolve only when
   * `durable` does, so a commit and the previous batch's fsync can overlap.
   */
  constructor(flush: (items: readonly T[]) => Promise<Flushed<R>>, maxBatch: number) {
    this.#flush = flush;
    this.#maxBatch = maxBatch;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#running ??= this.#loop();
    });
  }

  /** Resolves once everything submitted so far has been written (or failed). */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
    await this.#durable;
  }

  async #loop(): Promise<void> {
    // Yield once so every append made in this turn of the event loop joins the first batch.
    await new Promise<void>((r) => setImmediate(r));
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#maxBatch);
        try {
          const { results, durable } = await this.#flush(batch.map((p) => p.item));
          this.#durable = durable.then(
            () => batch.forEach((p, i) => p.resolve(results[i]!)),
            (err: unknown) => batch.forEach((p) => p.reject(err)),
          );
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.#running = undefined;
    }
  }
}
