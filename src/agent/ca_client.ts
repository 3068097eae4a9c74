// The agent's client for istio.v1.auth.IstioCertificateService/CreateCertificate over TLS,
// verified against the trusted roots. Sends the bearer token as metadata; never logs it.

import * as grpc from '@grpc/grpc-js';
import { isMeshcaError, MeshcaError } from '../errors/index.ts';
import type { Clock } from '../time/index.ts';
import { createTlsClient, ISTIO_CA_SERVICE, tlsFailureOf } from '../transport/index.ts';

/** A CreateCertificate that has not answered in this long is treated as the CA being down. */
export const CA_CALL_TIMEOUT_MS = 10_000;

/** How the agent proves who it is: its service-account token, or the certificate it holds now. */
export type CaCredential =
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'certificate'; readonly chainPem: string; readonly privateKeyPem: string };

export interface CertificateRequest {
  readonly csrPem: string;
  readonly ttlSeconds: number;
  readonly credential: CaCredential;
}

export interface CaClient {
  /** Returns Istio's cert_chain: leaf first, root bundle last. */
  createCertificate(req: CertificateRequest): Promise<string[]>;
  close(): void;
}

export interface CaClientOptions {
  /** host:port */
  readonly address: string;
  /** Name expected in the CA's serving certificate; default the host of `address`. */
  readonly serverName?: string;
  /** Roots the CA's serving certificate must chain to; read per connection, so it may change. */
  readonly trustedRootsPem: () => string;
  readonly timeoutMs?: number;
  readonly clock: Clock;
}

type CreateCertificateMethod = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: { cert_chain?: string[] }) => void,
) => void;

export function createCaClient(options: CaClientOptions): CaClient {
  const timeoutMs = options.timeoutMs ?? CA_CALL_TIMEOUT_MS;
  let tokenClient: { roots: string; client: grpc.Client } | undefined;

  const makeClient = (roots: string, identity?: { chainPem: string; privateKeyPem: string }): grpc.Client =>
    createTlsClient(ISTIO_CA_SERVICE, options.address, { rootsPem: roots, ...(options.serverName ? { serverName: options.serverName } : {}), ...(identity ? { identity } : {}) });

  const call = (client: grpc.Client, req: CertificateRequest): Promise<string[]> =>
    new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      if (req.credential.kind === 'token') metadata.set('authorization', `Bearer ${req.credential.token}`);
      const stub = client as unknown as { CreateCertificate: CreateCertificateMethod };
      stub.CreateCertificate({ csr: req.csrPem, validity_duration: req.ttlSeconds }, metadata, { deadline: options.clock.now() + timeoutMs }, (err, response) => {
        if (err) {
          reject(caError(err, options.address));
          return;
        }
        const chain = response?.cert_chain ?? [];
        if (chain.length < 2) reject(new MeshcaError('CA_UNAVAILABLE', `the CA at ${options.address} answered without a certificate chain`));
        else resolve(chain);
      });
    });

  return {
    async createCertificate(req) {
      const roots = options.trustedRootsPem();
      if (req.credential.kind === 'certificate') {
        const client = makeClient(roots, req.credential);
        try {
          return await call(client, req);
        } finally {
          client.close();
        }
      }
      if (!tokenClient || tokenClient.roots !== roots) {
        tokenClient?.client.close();
        tokenClient = { roots, client: makeClient(roots) };
      }
      try {
        return await call(tokenClient.client, req);
      } catch (err) {
        // A channel that failed to connect backs off on its own schedule (up to minutes); start
        // afresh so our backoff, not grpc-js's, decides when the CA is tried again.
        if (isMeshcaError(err, 'CA_UNAVAILABLE') || isMeshcaError(err, 'CA_UNTRUSTED')) {
          tokenClient?.client.close();
          tokenClient = undefined;
        }
        throw err;
      }
    },
    close() {
      tokenClient?.client.close();
      tokenClient = undefined;
    },
  };
}

/**
 * The CA's refusal keeps its code and message (they never carry our token). A handshake that failed
 * on the CA's certificate is CA_UNTRUSTED, an oversized request REQUEST_TOO_LARGE, both with what to
 * do; only what is left (no connection, a timeout, a CA that cannot serve) becomes CA_UNAVAILABLE.
 */
function caError(err: grpc.ServiceError, address: string): MeshcaError {
  const details = err.details || err.message;
  switch (err.code) {
    case grpc.status.UNAUTHENTICATED:
      return new MeshcaError('UNAUTHENTICATED', `the CA at ${address} refused our credentials: ${details}`, { cause: err });
    case grpc.status.PERMISSION_DENIED:
      return new MeshcaError('PERMISSION_DENIED', `the CA at ${address} refused to issue: ${details}`, { cause: err });
    case grpc.status.INVALID_ARGUMENT:
      return new MeshcaError('BAD_REQUEST', `the CA at ${address} refused the request: ${details}`, { cause: err });
    case grpc.status.RESOURCE_EXHAUSTED:
      if (/larger than max/i.test(details)) {
        return new MeshcaError('REQUEST_TOO_LARGE', `the CA at ${address} refused the request: it is over the CA's 64 KiB limit (${details}); send a smaller CSR`, { cause: err });
      }
      break;
    case grpc.status.UNAVAILABLE: {
      const tls = tlsFailureOf(details);
      if (tls !== undefined) {
        return new MeshcaError(
          'CA_UNTRUSTED',
          `the CA at ${address} could not be verified: ${tls}; check that --root-cert holds the CA's root and that --ca-name (default: the host of --ca-addr) is a name in its serving certificate`,
          { cause: err },
        );
      }
      break;
    }
  }
  return new MeshcaError('CA_UNAVAILABLE', `the CA at ${address} is unavailable (${grpc.status[err.code] ?? err.code}: ${details})`, { cause: err });
}
