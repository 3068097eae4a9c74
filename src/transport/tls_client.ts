// A gRPC client over TLS to a meshca CA: the server is verified against the given roots and must
// carry the expected name; with an identity, the client also authenticates over mutual TLS. Shared
// by the agent's CA client and the CLI's admin and audit clients, so every client checks the CA alike.

import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { serviceClient, type ServiceName } from './protos.ts';

export interface TlsClientOptions {
  /** Roots the server's certificate must chain to (PEM). */
  readonly rootsPem: string;
  /** Name the server's certificate must carry; default the host of the address. */
  readonly serverName?: string;
  /** A client certificate chain (leaf first) and its key, for mutual TLS. */
  readonly identity?: { readonly chainPem: string; readonly privateKeyPem: string };
}

/** The host part of host:port or [v6]:port. */
export function hostOf(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) return bracketed[1]!;
  const colon = address.lastIndexOf(':');
  return colon > 0 ? address.slice(0, colon) : address;
}

export function createTlsClient(service: ServiceName, address: string, options: TlsClientOptions): grpc.Client {
  const expectedName = options.serverName ?? hostOf(address);
  const credentials = grpc.credentials.createSsl(
    Buffer.from(options.rootsPem),
    options.identity ? Buffer.from(options.identity.privateKeyPem) : null,
    options.identity ? Buffer.from(options.identity.chainPem) : null,
    // The CA's serving certificate names meshca, meshca.<ns>.svc, localhost, 127.0.0.1 and ::1;
    // --ca-name picks which one we insist on when the address is something else.
    { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(expectedName, cert) },
  );
  const Client = serviceClient(service);
  // RFC 6066: SNI carries host names only, so an IP address is checked but not sent as SNI.
  return new Client(address, credentials, isIP(expectedName) ? {} : { 'grpc.ssl_target_name_override': expectedName, 'grpc.default_authority': expectedName });
}

/** What a failed TLS handshake looks like in grpc-js's connection error: a certificate or name problem. */
const TLS_FAILURE = /certificate|altnames|ERR_TLS|SSL|handshake/i;

/**
 * Why a call that failed UNAVAILABLE never reached the server because its certificate or name did
 * not verify, or undefined if it failed for another reason. grpc-js wraps the handshake error
 * ("No connection established. Last error: Error [CODE]: reason. Resolution note: …"); this keeps the reason.
 */
export function tlsFailureOf(details: string): string | undefined {
  if (!TLS_FAILURE.test(details)) return undefined;
  const m = /Last error: (?:Error(?: \[[A-Z0-9_]+\])?: )?(.*?)\.?(?: Resolution note:.*)?$/s.exec(details);
  return (m?.[1] ?? details).trim();
}
