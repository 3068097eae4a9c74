// Consuming other trust domains' bundles (--federate-with): fetched from each peer's bundle
// endpoint (https_spiffe: the server must present an X509-SVID with the endpoint's SPIFFE ID,
// verified against the peer's bundle as last known; https_web: WebPKI), refreshed by the
// document's spiffe_refresh_hint on the injected clock, kept in the key store as the last good
// copy, so a peer that is down leaves its last bundle in force.

import { request } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { describeError, MeshcaError } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import { SECOND_MS, type Clock, type Timer } from '../time/index.ts';
import { readBounded } from '../transport/body/index.ts';
import { parseBundleDocument, type FederatedBundleStore, type FederationPeer, type PeerBundle } from './peers.ts';

/** After a failed fetch, try again this soon (or at the hint, if that is sooner). */
export const FEDERATION_RETRY_MS = 30 * SECOND_MS;
const FETCH_TIMEOUT_MS = 10 * SECOND_MS;
const MAX_BUNDLE_BYTES = 1024 * 1024;

/** Fetches one bundle document; a test can replace it. */
export type BundleFetcher = (peer: FederationPeer, trustedRootsPem: readonly string[]) => Promise<string>;

function urisOf(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? '').split(', ').filter((n) => n.startsWith('URI:')).map((n) => n.slice(4));
}

/** GET over TLS, authenticating the endpoint as its profile says; never follows redirects. */
export const fetchBundle: BundleFetcher = (peer, trustedRootsPem) =>
  new Promise((resolve, reject) => {
    const spiffe = peer.profile === 'https_spiffe';
    const req = request(
      peer.url,
      {
        method: 'GET',
        timeout: FETCH_TIMEOUT_MS,
        ...(spiffe
          ? {
              ca: trustedRootsPem.join(''),
              // https_spiffe (Bundle spec §5.2.2): the peer's X509-SVID must carry the endpoint's ID; names play no part.
              checkServerIdentity: (_host: string, cert: PeerCertificate) => {
                const uris = urisOf(cert);
                return uris.length === 1 && uris[0] === peer.endpointId ? undefined : new Error(`the endpoint presented ${uris.join(', ') || 'no SPIFFE ID'}, not ${peer.endpointId}`);
              },
            }
          : {}),
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`HTTP ${res.statusCode}`));
          return;
        }
        readBounded(res, MAX_BUNDLE_BYTES, () => new Error('the bundle is larger than 1 MiB')).then((body) => resolve(body.toString('utf8')), reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });

export interface FederationOptions {
  readonly peers: readonly FederationPeer[];
  readonly store: FederatedBundleStore;
  /** --federate-bundle: roots trusted out of band, used until a fetched bundle replaces them. */
  readonly bootstrap: ReadonlyMap<string, PeerBundle>;
  readonly clock: Clock;
  readonly log: Pick<Logger, 'info' | 'warn'>;
  readonly fetch?: BundleFetcher;
}

export class Federation {
  readonly #o: FederationOptions;
  readonly #bundles = new Map<string, PeerBundle>();
  readonly #timers = new Map<string, Timer>();
  readonly #listeners = new Set<() => void>();
  #stopped = false;

  constructor(o: FederationOptions) {
    this.#o = o;
    for (const peer of o.peers) {
      const known = o.store.read(peer.trustDomain) ?? o.bootstrap.get(peer.trustDomain);
      if (known) this.#bundles.set(peer.trustDomain, known);
      else if (peer.profile === 'https_spiffe') {
        // Fail closed: without a bundle there is nothing to authenticate the peer's endpoint with.
        throw new MeshcaError('BAD_CONFIG', `--federate-with ${peer.trustDomain}: https_spiffe needs the peer's roots to authenticate its endpoint the first time; give --federate-bundle ${peer.trustDomain}=<PEM file>`);
      }
    }
  }

  /** Fetches every peer now; later fetches follow each bundle's refresh hint. */
  async start(): Promise<void> {
    await Promise.all(this.#o.peers.map((p) => this.refresh(p.trustDomain)));
  }

  /** Each federated trust domain's roots as currently trusted. */
  bundles(): ReadonlyMap<string, readonly string[]> {
    return new Map([...this.#bundles].map(([td, b]) => [td, b.rootsPem]));
  }

  /** Every federated root, for a ROOTCA that also trusts peers (--federated-in-rootca). */
  roots(): readonly string[] {
    return [...this.#bundles.values()].flatMap((b) => b.rootsPem);
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  async refresh(trustDomain: string): Promise<boolean> {
    const peer = this.#o.peers.find((p) => p.trustDomain === trustDomain);
    if (!peer || this.#stopped) return false;
    this.#timers.get(trustDomain)?.cancel();
    const current = this.#bundles.get(trustDomain);
    let delayMs = Math.min(FEDERATION_RETRY_MS, (current?.refreshHintSeconds || FEDERATION_RETRY_MS / 1000) * 1000);
    let changed = false;
    try {
      const body = await (this.#o.fetch ?? fetchBundle)(peer, current?.rootsPem ?? []);
      const next = parseBundleDocument(body, trustDomain, this.#o.clock.now());
      delayMs = next.refreshHintSeconds * 1000;
      changed = !current || current.sequence !== next.sequence || current.rootsPem.join('') !== next.rootsPem.join('');
      this.#bundles.set(trustDomain, next);
      this.#o.store.write(next);
      if (changed) {
        this.#o.log.info({ trustDomain, sequence: next.sequence, roots: next.rootsPem.length }, 'federated bundle updated');
        for (const l of this.#listeners) l();
      }
    } catch (err) {
      this.#o.log.warn({ trustDomain, url: peer.url, reason: describeError(err), keeping: current ? `sequence ${current.sequence}` : 'nothing' }, 'could not fetch a federated bundle; keeping the last good copy');
    }
    if (!this.#stopped) this.#timers.set(trustDomain, this.#o.clock.setTimer(delayMs, () => void this.refresh(trustDomain)));
    return changed;
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.values()) t.cancel();
  }
}
