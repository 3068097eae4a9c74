// One StreamSecrets stream (state of the world): subscription, nonces, ACK/NACK, pushes.
// Holds a few fields per stream and writes shared, pre-encoded responses. Never logs secrets.

import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../observability/index.ts';
import type { SdsMetrics } from './metrics.ts';
import { checkTypeUrl, nodeIdOf, WILDCARD, type DiscoveryRequest } from './requests.ts';
import type { SdsSecret, SecretChange, SecretSource } from './secrets.ts';
import type { Subscriber, SubscriptionIndex } from './subscriptions.ts';

export class SotwStream implements Subscriber {
  readonly #call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>;
  readonly #source: SecretSource;
  readonly #index: SubscriptionIndex;
  readonly #metrics: SdsMetrics;
  readonly #log: Logger;
  /** undefined until the first request; empty set = subscribed to nothing. */
  #names: Set<string> | undefined;
  #wildcard = false;
  #last: { readonly key: string; readonly nonce: string } | undefined;
  #closed = false;

  constructor(call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>, source: SecretSource, index: SubscriptionIndex, metrics: SdsMetrics, log: Logger) {
    this.#call = call;
    this.#source = source;
    this.#index = index;
    this.#metrics = metrics;
    this.#log = log;
  }

  /** Handles one request; throws MeshcaError for a request the stream must be ended over. */
  onRequest(req: DiscoveryRequest): void {
    checkTypeUrl(req.type_url);
    const nonce = req.response_nonce ?? '';
    // xDS: a request answering anything but our latest response is stale and carries no meaning.
    if (nonce !== '' && nonce !== this.#last?.nonce) return;
    if (nonce !== '') {
      if (req.error_detail) {
        this.#metrics.nacked();
        this.#log.warn(
          { node: nodeIdOf(req), names: req.resource_names, rejectedNonce: nonce, reason: req.error_detail.message?.slice(0, 500) },
          'proxy rejected an SDS response (NACK); it keeps its previous secret, and the next change is pushed as usual',
        );
      } else {
        this.#metrics.acked();
      }
    }
    this.#resubscribe(req.resource_names ?? []);
    this.#sendIfChanged();
  }

  onChange(change: SecretChange): void {
    this.#sendIfChanged(change.atMs);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#names) this.#index.unwatch(this, this.#names);
    this.#index.watchAll(this, false);
  }

  #resubscribe(requested: readonly string[]): void {
    const first = this.#names === undefined;
    // xDS: an empty first request, or '*', asks for everything; an empty later request on a
    // wildcard stream keeps it wildcard.
    const wildcard = requested.includes(WILDCARD) || (requested.length === 0 && (first || this.#wildcard));
    const names = new Set(requested.filter((n) => n !== WILDCARD));
    if (!first && wildcard === this.#wildcard && sameSet(names, this.#names!)) return;
    if (this.#names) this.#index.unwatch(this, this.#names);
    this.#names = names;
    this.#index.watch(this, names);
    this.#wildcard = wildcard;
    this.#index.watchAll(this, wildcard);
  }

  #currentSecrets(): SdsSecret[] {
    const names = this.#wildcard ? new Set([...this.#source.names(), ...this.#names!]) : this.#names!;
    const secrets: SdsSecret[] = [];
    for (const name of [...names].sort()) {
      const secret = this.#source.get(name);
      if (secret) secrets.push(secret);
    }
    return secrets;
  }

  /** `changeAtMs`: when the secret change that calls this happened (none when a request does). */
  #sendIfChanged(changeAtMs?: number): void {
    if (this.#closed || this.#names === undefined) return;
    const secrets = this.#currentSecrets();
    // Warming: a requested secret that does not exist yet is sent when it appears, not refused.
    if (secrets.length === 0) return;
    const response = this.#index.encoder.sotw(secrets, this.#last);
    if (!response) return;
    this.#last = response;
    this.#call.write(response.bytes);
    this.#metrics.pushed(changeAtMs);
  }
}

export function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
