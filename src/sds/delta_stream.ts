// One DeltaSecrets stream (incremental xDS): sends only secrets whose version the proxy lacks,
// honours unsubscribes and tells the proxy about secrets that went away. Never logs secrets.

import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../observability/index.ts';
import type { SdsMetrics } from './metrics.ts';
import { checkTypeUrl, nodeIdOf, WILDCARD, type DeltaDiscoveryRequest } from './requests.ts';
import type { SdsSecret, SecretChange, SecretSource } from './secrets.ts';
import type { Subscriber, SubscriptionIndex } from './subscriptions.ts';

export class DeltaStream implements Subscriber {
  readonly #call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>;
  readonly #source: SecretSource;
  readonly #index: SubscriptionIndex;
  readonly #metrics: SdsMetrics;
  readonly #log: Logger;
  readonly #names = new Set<string>();
  /** Version of each secret the proxy holds, as far as this stream knows. */
  readonly #held = new Map<string, string>();
  #wildcard = false;
  #started = false;
  #lastNonce: string | undefined;
  #closed = false;

  constructor(call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>, source: SecretSource, index: SubscriptionIndex, metrics: SdsMetrics, log: Logger) {
    this.#call = call;
    this.#source = source;
    this.#index = index;
    this.#metrics = metrics;
    this.#log = log;
  }

  onRequest(req: DeltaDiscoveryRequest): void {
    checkTypeUrl(req.type_url);
    if (req.response_nonce) {
      if (req.error_detail) {
        this.#metrics.nacked();
        this.#log.warn(
          { node: nodeIdOf(req), rejectedNonce: req.response_nonce, reason: req.error_detail.message?.slice(0, 500) },
          'proxy rejected an SDS delta response (NACK); it keeps its previous secret, and the next change is pushed as usual',
        );
      } else {
        this.#metrics.acked();
      }
    }
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    if (!this.#started) {
      this.#started = true;
      // A reconnecting proxy says what it already holds, so unchanged secrets are not resent.
      for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) this.#held.set(name, version);
      // Delta xDS: an empty first subscription is the legacy wildcard.
      if (subscribe.length === 0) this.#setWildcard(true);
    }
    for (const name of subscribe) {
      if (name === WILDCARD) this.#setWildcard(true);
      else if (!this.#names.has(name)) {
        this.#names.add(name);
        this.#index.watch(this, [name]);
      }
    }
    for (const name of unsubscribe) {
      if (name === WILDCARD) this.#setWildcard(false);
      else if (this.#names.delete(name)) this.#index.unwatch(this, [name]);
      this.#held.delete(name);
    }
    this.#sendChanges();
  }

  onChange(change: SecretChange): void {
    this.#sendChanges(change.atMs);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#index.unwatch(this, this.#names);
    this.#index.watchAll(this, false);
  }

  #setWildcard(on: boolean): void {
    this.#wildcard = on;
    this.#index.watchAll(this, on);
  }

  /** `changeAtMs`: when the secret change that calls this happened (none when a request does). */
  #sendChanges(changeAtMs?: number): void {
    if (this.#closed || !this.#started) return;
    const wanted = this.#wildcard ? new Set([...this.#source.names(), ...this.#names]) : this.#names;
    const changed: SdsSecret[] = [];
    const removed: string[] = [];
    for (const name of [...wanted].sort()) {
      const secret = this.#source.get(name);
      if (secret && this.#held.get(name) !== secret.version) changed.push(secret);
      // Only a secret the proxy holds can be removed; one never sent just keeps waiting.
      else if (!secret && this.#held.has(name)) removed.push(name);
    }
    if (changed.length === 0 && removed.length === 0) return;
    const response = this.#index.encoder.delta(changed, removed, this.#lastNonce);
    for (const secret of changed) this.#held.set(secret.name, secret.version);
    for (const name of removed) this.#held.delete(name);
    this.#lastNonce = response.nonce;
    this.#call.write(response.bytes);
    this.#metrics.pushed(changeAtMs);
  }
}
