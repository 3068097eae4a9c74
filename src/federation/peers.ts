// SPIFFE federation's data: who we federate with (--federate-with, --federate-bundle), a peer's
// bundle document parsed strictly (SPIFFE Trust Domain and Bundle §4), and the last good copy of
// each peer's bundle kept in the key store (federation/<td>.json). Public data only.

import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeError, MeshcaError } from '../errors/index.ts';
import { decodeCertificates, PUBLIC_FILE_MODE, readSigningCertificateId, toPem, writeFileAtomic } from '../pki/index.ts';
import { parseSpiffeId, validateTrustDomain } from '../spiffe/index.ts';

export type BundleProfile = 'https_spiffe' | 'https_web';

export interface FederationPeer {
  readonly trustDomain: string;
  readonly url: string;
  readonly profile: BundleProfile;
  /** https_spiffe: the SPIFFE ID the endpoint's server certificate must carry. */
  readonly endpointId?: string;
}

/** The namespace meshca runs in by default: a peer meshca's endpoint ID when none is given. */
const DEFAULT_PEER_ENDPOINT_PATH = '/ns/meshca-system/sa/meshca';
const WEB_PREFIX = 'https_web+';

/**
 * `<td>=https://host:port/path[#spiffe://<td>/endpoint-id]` (https_spiffe; the endpoint ID defaults
 * to a meshca in meshca-system) or `<td>=https_web+https://host/path` (https_web: WebPKI).
 */
export function parseFederationPeer(text: string): FederationPeer {
  const eq = text.indexOf('=');
  const bad = (why: string) => new MeshcaError('BAD_CONFIG', `--federate-with "${text}": ${why}; expected <trust-domain>=https://host:port/path[#<endpoint SPIFFE ID>] or <trust-domain>=https_web+https://…`);
  if (eq <= 0) throw bad('no "<trust-domain>="');
  const trustDomain = text.slice(0, eq);
  try {
    validateTrustDomain(trustDomain);
  } catch (err) {
    throw bad(describeError(err));
  }
  let rest = text.slice(eq + 1);
  const web = rest.startsWith(WEB_PREFIX);
  if (web) rest = rest.slice(WEB_PREFIX.length);
  const hash = rest.indexOf('#');
  const url = hash < 0 ? rest : rest.slice(0, hash);
  if (!/^https:\/\/[^/]+/.test(url)) throw bad('the endpoint must be an https:// URL');
  if (web) {
    if (hash >= 0) throw bad('https_web takes no endpoint SPIFFE ID');
    return { trustDomain, url, profile: 'https_web' };
  }
  const endpointId = hash < 0 ? `spiffe://${trustDomain}${DEFAULT_PEER_ENDPOINT_PATH}` : rest.slice(hash + 1);
  try {
    parseSpiffeId(endpointId);
  } catch (err) {
    throw bad(`endpoint ID: ${describeError(err)}`);
  }
  return { trustDomain, url, profile: 'https_spiffe', endpointId };
}

/** A peer's bundle as served: its roots, its sequence, how often to fetch it again. */
export interface PeerBundle {
  readonly trustDomain: string;
  readonly rootsPem: readonly string[];
  readonly sequence: number;
  readonly refreshHintSeconds: number;
  readonly fetchedAtMs: number;
}

/** Bundle §4: keys with use x509-svid carry one CA certificate each in x5c; other uses are ignored. */
export function parseBundleDocument(body: string, trustDomain: string, fetchedAtMs: number): PeerBundle {
  const bad = (why: string) => new MeshcaError('BAD_CHAIN', `the bundle of ${trustDomain} is not a SPIFFE bundle (${why})`);
  let doc: { keys?: unknown; spiffe_sequence?: unknown; spiffe_refresh_hint?: unknown };
  try {
    doc = JSON.parse(body) as typeof doc;
  } catch {
    throw bad('not JSON');
  }
  if (!Array.isArray(doc.keys)) throw bad('no keys');
  const rootsPem: string[] = [];
  for (const key of doc.keys as Array<{ use?: unknown; x5c?: unknown }>) {
    if (key.use !== 'x509-svid') continue;
    if (!Array.isArray(key.x5c) || key.x5c.length !== 1 || typeof key.x5c[0] !== 'string') throw bad('an x509-svid key must hold exactly one certificate in x5c');
    const cert = new X509Certificate(Buffer.from(key.x5c[0], 'base64'));
    const id = readSigningCertificateId(cert);
    if (id && id.trustDomain !== trustDomain) throw bad(`a root names trust domain ${id.trustDomain}`);
    rootsPem.push(toPem(cert.raw, 'CERTIFICATE'));
  }
  if (rootsPem.length === 0) throw bad('no x509-svid keys');
  const sequence = typeof doc.spiffe_sequence === 'number' ? doc.spiffe_sequence : 0;
  const hint = typeof doc.spiffe_refresh_hint === 'number' && doc.spiffe_refresh_hint > 0 ? doc.spiffe_refresh_hint : 300;
  return { trustDomain, rootsPem, sequence, refreshHintSeconds: hint, fetchedAtMs };
}

export const FEDERATION_DIR = 'federation';

/** The last good copy of each peer's bundle, beside the CA files (a Secret key store keeps the same files). */
export class FederatedBundleStore {
  readonly #dir: string;

  constructor(keysDir: string) {
    this.#dir = join(keysDir, FEDERATION_DIR);
  }

  read(trustDomain: string): PeerBundle | undefined {
    const path = join(this.#dir, `${trustDomain}.json`);
    if (!existsSync(path)) return undefined;
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as PeerBundle;
    } catch (err) {
      throw new MeshcaError('BAD_CONFIG', `${path} is not a stored federated bundle: ${describeError(err)}`, { cause: err });
    }
  }

  write(bundle: PeerBundle): void {
    mkdirSync(this.#dir, { recursive: true });
    writeFileAtomic(join(this.#dir, `${bundle.trustDomain}.json`), `${JSON.stringify(bundle, null, 2)}\n`, PUBLIC_FILE_MODE);
  }
}

/** `<td>=<file>`: the peer's roots as first trusted (out of band), to fetch its bundle the first time. */
export function readBootstrapBundle(text: string, nowMs: number): PeerBundle {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new MeshcaError('BAD_CONFIG', `--federate-bundle "${text}": expected <trust-domain>=<PEM file of its roots>`);
  const trustDomain = text.slice(0, eq);
  const path = text.slice(eq + 1);
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new MeshcaError('BAD_CONFIG', `--federate-bundle ${trustDomain}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? describeError(err)})`);
  }
  const rootsPem = decodeCertificates(pem, path).map((d) => toPem(d, 'CERTIFICATE'));
  return { trustDomain, rootsPem, sequence: 0, refreshHintSeconds: 0, fetchedAtMs: nowMs };
}
