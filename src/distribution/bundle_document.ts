// The SPIFFE trust bundle as a JWK set (SPIFFE Trust Domain and Bundle spec §4): one key per root,
// use "x509-svid", the certificate in x5c, plus spiffe_sequence and spiffe_refresh_hint. Public data only.

import { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Bundle spec §4.1.1: a hint, in seconds, of how often consumers should re-fetch. */
export const DEFAULT_REFRESH_HINT_SECONDS = 60;

export interface SpiffeBundleKey {
  readonly use: 'x509-svid';
  readonly kty: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
  readonly n?: string;
  readonly e?: string;
  /** Bundle spec §4.2.1: exactly one certificate, base64 (not base64url) DER. */
  readonly x5c: readonly [string];
}

export interface SpiffeBundleDocument {
  readonly keys: readonly SpiffeBundleKey[];
  readonly spiffe_sequence: number;
  readonly spiffe_refresh_hint: number;
}

export function spiffeBundleDocument(rootsPem: readonly string[], sequence: number, refreshHintSeconds = DEFAULT_REFRESH_HINT_SECONDS): SpiffeBundleDocument {
  const keys = rootsPem.map((pem): SpiffeBundleKey => {
    const cert = new X509Certificate(pem);
    const jwk = cert.publicKey.export({ format: 'jwk' }) as Record<string, string>;
    const pub = jwk.kty === 'EC' ? { kty: 'EC', crv: jwk.crv!, x: jwk.x!, y: jwk.y! } : { kty: jwk.kty!, n: jwk.n!, e: jwk.e! };
    return { use: 'x509-svid', ...pub, x5c: [cert.raw.toString('base64')] };
  });
  return { keys, spiffe_sequence: sequence, spiffe_refresh_hint: refreshHintSeconds };
}

export interface BundleSource {
  /** The roots being distributed and a number that grows whenever they change. */
  (): { readonly rootsPem: readonly string[]; readonly sequence: number };
}

/** GET /bundle on the HTTP port: the document, with an ETag so pollers can ask cheaply. */
export function createBundleRoute(source: BundleSource, refreshHintSeconds = DEFAULT_REFRESH_HINT_SECONDS): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const { rootsPem, sequence } = source();
    const body = JSON.stringify(spiffeBundleDocument(rootsPem, sequence, refreshHintSeconds));
    const etag = `"${sequence}-${Buffer.byteLength(body)}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': `max-age=${refreshHintSeconds}`, etag });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
