// The CLI as a client of a running CA (--server host:port): the audit and admin gRPC APIs, over TLS
// verified against --root-cert, the caller proven by mutual TLS (--cert/--key) or a token
// (--token-file). An auditor or an operator needs no database credentials and no key directory.
// Never sends or logs more than the token itself in the authorization header.

import type * as grpc from '@grpc/grpc-js';
import { Metadata, status as grpcStatus } from '@grpc/grpc-js';
import { readSettingFile } from '../config/index.ts';
import { MeshcaError, type ErrorCode } from '../errors/index.ts';
import type { Clock } from '../time/index.ts';
import { createTlsClient, tlsFailureOf, type ServiceName } from '../transport/index.ts';

/** One answer from the CA; a Query page is one answer too. */
export const REMOTE_CALL_TIMEOUT_MS = 60_000;

/** The settings every remote-capable command accepts. */
export const REMOTE_SETTINGS = ['server', 'root-cert', 'ca-name', 'cert', 'key', 'token-file'] as const;

export interface RemoteSettings {
  readonly server?: string;
  readonly 'root-cert'?: string;
  readonly 'ca-name'?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly 'token-file': string;
}

/** How a client proves who it is: a token, or a certificate the CA issued (mutual TLS). */
export type ClientCredential =
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'certificate'; readonly chainPem: string; readonly privateKeyPem: string };

/** --cert and --key authenticate over mutual TLS; without them the token file is the credential. */
export function clientCredentialOf(v: Pick<RemoteSettings, 'cert' | 'key' | 'token-file'>): ClientCredential {
  if (v.cert !== undefined || v.key !== undefined) {
    if (v.cert === undefined || v.key === undefined) throw new MeshcaError('BAD_CONFIG', '--cert and --key go together');
    return { kind: 'certificate', chainPem: readSettingFile(v.cert, '--cert'), privateKeyPem: readSettingFile(v.key, '--key') };
  }
  return { kind: 'token', token: readSettingFile(v['token-file'], '--token-file').trim() };
}

export interface RemoteClient {
  readonly address: string;
  unary<T>(method: string, request: object): Promise<T>;
  /** A server stream, collected. */
  collect<T>(method: string, request: object): Promise<T[]>;
  close(): void;
}

/** The CA's refusal keeps its message; the code says what kind of failure it was. */
const CODES: Partial<Record<grpc.status, ErrorCode>> = {
  [grpcStatus.UNAUTHENTICATED]: 'UNAUTHENTICATED',
  [grpcStatus.PERMISSION_DENIED]: 'PERMISSION_DENIED',
  [grpcStatus.INVALID_ARGUMENT]: 'BAD_REQUEST',
  [grpcStatus.FAILED_PRECONDITION]: 'ROTATION_REFUSED',
  [grpcStatus.UNAVAILABLE]: 'CA_UNAVAILABLE',
  [grpcStatus.DEADLINE_EXCEEDED]: 'CA_UNAVAILABLE',
};

function remoteError(err: grpc.ServiceError, address: string): MeshcaError {
  const details = err.details || err.message;
  const tls = err.code === grpcStatus.UNAVAILABLE ? tlsFailureOf(details) : undefined;
  if (tls !== undefined) {
    return new MeshcaError(
      'CA_UNTRUSTED',
      `the CA at ${address} could not be verified: ${tls}; check that --root-cert holds the CA's root and that --ca-name (default: the host of --server) is a name in its serving certificate`,
      { cause: err },
    );
  }
  const code = CODES[err.code] ?? 'INTERNAL';
  const what = code === 'CA_UNAVAILABLE' ? `the CA at ${address} could not be reached (${grpcStatus[err.code]}: ${details})` : `the CA at ${address} answered ${grpcStatus[err.code]}: ${details}`;
  return new MeshcaError(code, what, { cause: err });
}

type Unary = (req: object, md: Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;
type Streaming = (req: object, md: Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<unknown>;

/** A client for `service` at --server; `v.server` must be set. */
export function connectRemote(service: ServiceName, v: RemoteSettings & { readonly server: string }, clock: Clock): RemoteClient {
  if (v['root-cert'] === undefined) throw new MeshcaError('BAD_CONFIG', "--root-cert is required with --server (the root that signed the CA's serving certificate, e.g. keys/root-cert.pem)");
  const rootsPem = readSettingFile(v['root-cert'], '--root-cert');
  const credential = clientCredentialOf(v);
  const address = v.server;
  const client = createTlsClient(service, address, {
    rootsPem,
    ...(v['ca-name'] ? { serverName: v['ca-name'] } : {}),
    ...(credential.kind === 'certificate' ? { identity: credential } : {}),
  });
  const metadata = (): Metadata => {
    const md = new Metadata();
    if (credential.kind === 'token') md.set('authorization', `Bearer ${credential.token}`);
    return md;
  };
  const options = (): grpc.CallOptions => ({ deadline: clock.now() + REMOTE_CALL_TIMEOUT_MS });
  const unaryOf = (method: string) => (client as unknown as Record<string, Unary>)[method]!.bind(client);
  const streamOf = (method: string) => (client as unknown as Record<string, Streaming>)[method]!.bind(client);
  return {
    address,
    unary: <T>(method: string, request: object) =>
      new Promise<T>((resolve, reject) => {
        unaryOf(method)(request, metadata(), options(), (err: grpc.ServiceError | null, res: unknown) => (err ? reject(remoteError(err, address)) : resolve(res as T)));
      }),
    collect: <T>(method: string, request: object) =>
      new Promise<T[]>((resolve, reject) => {
        const out: T[] = [];
        const stream = streamOf(method)(request, metadata(), options()) as grpc.ClientReadableStream<T>;
        stream.on('data', (item: T) => out.push(item));
        stream.on('error', (err: grpc.ServiceError) => reject(remoteError(err, address)));
        stream.on('end', () => resolve(out));
      }),
    close: () => client.close(),
  };
}
