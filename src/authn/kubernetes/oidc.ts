// OIDC discovery of the cluster's service-account issuer (/.well-known/openid-configuration →
// jwks_uri) and the HTTPS fetch jose uses for it. It trusts the system roots plus the cluster CA,
// and sends the CA's API credentials only to the API server's own origin, never elsewhere.

import { request } from 'node:https';
import { rootCertificates } from 'node:tls';
import { describeError, MeshcaError } from '../../errors/index.ts';

/** A discovery document or JWKS is a few KiB; refuse to buffer anything silly. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;
const FETCH_TIMEOUT_MS = 5_000;

export type IssuerFetch = (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;

export interface IssuerTrust {
  /** PEM of the cluster CA (from the kubeconfig or the in-cluster service-account mount). */
  readonly clusterCaPem?: string;
  /** The API server's origin and the headers that authenticate the CA to it. */
  readonly apiServer?: { readonly origin: string; readonly headers: Readonly<Record<string, string>> };
}

export function createIssuerFetch(trust: IssuerTrust): IssuerFetch {
  const ca = trust.clusterCaPem ? [...rootCertificates, trust.clusterCaPem] : undefined;
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      if (target.protocol !== 'https:') {
        reject(new Error(`issuer URL ${target.origin} is not https`));
        return;
      }
      const headers: Record<string, string> = { accept: 'application/json' };
      if (trust.apiServer && target.origin === trust.apiServer.origin) Object.assign(headers, trust.apiServer.headers);
      const req = request(target, { method: 'GET', headers, ...(ca ? { ca } : {}), signal: init?.signal ?? AbortSignal.timeout(FETCH_TIMEOUT_MS) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_DOCUMENT_BYTES) res.destroy(new Error(`${target.origin}${target.pathname} answered more than ${MAX_DOCUMENT_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') responseHeaders.set(k, v);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers: responseHeaders }));
        });
      });
      req.on('error', reject);
      req.end();
    });
}

export interface DiscoveredIssuer {
  readonly issuer: string;
  readonly jwksUri: string;
}

/**
 * Reads the discovery document at `<base>/.well-known/openid-configuration`. When the issuer was
 * configured (--oidc-issuer) the document must name exactly it (OpenID Connect Discovery §4.3).
 */
export async function discoverIssuer(base: string, fetchIssuer: IssuerFetch, opts: { requireIssuer: boolean }): Promise<DiscoveredIssuer> {
  const url = `${base.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let doc: { issuer?: unknown; jwks_uri?: unknown };
  try {
    const res = await fetchIssuer(url);
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    doc = (await res.json()) as typeof doc;
  } catch (err) {
    throw new MeshcaError('AUTHN_UNAVAILABLE', `OIDC discovery at ${url} failed: ${describeError(err)}`, { cause: err });
  }
  if (typeof doc.issuer !== 'string' || typeof doc.jwks_uri !== 'string') {
    throw new MeshcaError('AUTHN_UNAVAILABLE', `OIDC discovery at ${url} has no issuer or jwks_uri`);
  }
  if (opts.requireIssuer && doc.issuer !== base) {
    throw new MeshcaError('AUTHN_UNAVAILABLE', `OIDC discovery at ${url} names issuer "${doc.issuer}", not the configured "${base}"`);
  }
  if (!doc.jwks_uri.startsWith('https://')) throw new MeshcaError('AUTHN_UNAVAILABLE', `OIDC discovery at ${url} gives a jwks_uri that is not https`);
  return { issuer: doc.issuer, jwksUri: doc.jwks_uri };
}
