// Who is watching which secret of a source, so a change reaches exactly the streams subscribed to
// it. One index and one response encoder per source, shared by every stream on that source.

import { ResponseEncoder } from './encoding.ts';
import type { SecretChange, SecretSource } from './secrets.ts';

export interface Subscriber {
  onChange(change: SecretChange): void;
}

export class SubscriptionIndex {
  readonly encoder = new ResponseEncoder();
  readonly #byName = new Map<string, Set<Subscriber>>();
  readonly #wildcard = new Set<Subscriber>();

  constructor(source: SecretSource) {
    source.subscribe((change) => this.#dispatch(change));
  }

  watch(subscriber: Subscriber, names: Iterable<string>): void {
    for (const name of names) {
      let set = this.#byName.get(name);
      if (!set) this.#byName.set(name, (set = new Set()));
      set.add(subscriber);
    }
  }

  unwatch(subscriber: Subscriber, names: Iterable<string>): void {
    for (const name of names) {
      const set = this.#byName.get(name);
      if (!set) continue;
      set.delete(subscriber);
      if (set.size === 0) this.#byName.delete(name);
    }
  }

  watchAll(subscriber: Subscriber, on: boolean): void {
    if (on) this.#wildcard.add(subscriber);
    else this.#wildcard.delete(subscriber);
  }

  #dispatch(change: SecretChange): void {
    const affected = new Set<Subscriber>(this.#wildcard);
    for (const name of [...change.changed, ...change.removed]) {
      for (const subscriber of this.#byName.get(name) ?? []) affected.add(subscriber);
    }
    for (const subscriber of affected) subscriber.onChange(change);
  }
}

const indexes = new WeakMap<SecretSource, SubscriptionIndex>();

export function subscriptionIndexFor(source: SecretSource): SubscriptionIndex {
  let index = indexes.get(source);
  if (!index) indexes.set(source, (index = new SubscriptionIndex(source)));
  return index;
}
