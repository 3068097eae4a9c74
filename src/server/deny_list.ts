// The runtime deny list as one serve follows it: read from the key store at start (a list that
// cannot be read stops the start: fail closed), re-read when it changes (the rotation runtime's
// poll calls `reload`), compiled once per change for the identity policy's check.

import { compileDenyList, type DenyCheck } from '../authn/index.ts';
import { describeError } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import type { DenyListStore } from '../rotation/index.ts';

export class DenyListFollower {
  readonly #store: DenyListStore;
  readonly #log: Pick<Logger, 'info' | 'warn'>;
  readonly #listeners = new Set<() => void>();
  #token: string;
  #version: number;
  #check: DenyCheck;
  #lastError: string | undefined;

  constructor(store: DenyListStore, log: Pick<Logger, 'info' | 'warn'>) {
    this.#store = store;
    this.#log = log;
    this.#token = store.changeToken();
    const doc = store.read();
    this.#version = doc.version;
    this.#check = compileDenyList(doc.entries);
  }

  /** The check for the list being served now. */
  readonly check = (): DenyCheck => this.#check;

  get version(): number {
    return this.#version;
  }

  /** Re-reads the list if it changed; true when the served list was swapped (listeners have been told). */
  reload(): boolean {
    const token = this.#store.changeToken();
    if (token === this.#token) return false;
    try {
      const doc = this.#store.read();
      this.#check = compileDenyList(doc.entries);
      this.#token = token;
      this.#lastError = undefined;
      if (doc.version === this.#version) return false;
      this.#version = doc.version;
      this.#log.info({ denyListVersion: doc.version, entries: doc.entries.length }, 'runtime deny list changed; applying it to every request and open stream');
      for (const listener of this.#listeners) listener();
      return true;
    } catch (err) {
      // Keep serving the previous list: a half-written file is replaced atomically, so this is a
      // broken file, and dropping every entry because of it would open what was closed.
      const reason = describeError(err);
      if (reason !== this.#lastError) this.#log.warn({ reason }, 'runtime deny list changed but cannot be read; still applying the previous one');
      this.#lastError = reason;
      return false;
    }
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }
}
