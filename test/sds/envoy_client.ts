// An SDS client that behaves like Envoy: opens StreamSecrets/DeltaSecrets on a Unix socket (or any
// target), ACKs every response with its nonce and version, NACKs when told to, and decodes the
// secrets. Shared by the SDS, agent and benchmark code.

import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { SECRET_TYPE_URL } from '../../src/sds/index.ts';
import { protoDefinition, SDS_SERVICE, serviceClient } from '../../src/transport/index.ts';

export interface DecodedSecret {
  name: string;
  chainPem?: string;
  privateKeyPem?: string;
  bundlePem?: string;
}

export interface ReceivedResponse {
  version: string;
  nonce: string;
  secrets: Map<string, DecodedSecret>;
  removed: string[];
  atMs: number;
}

interface Protos {
  Client: grpc.ServiceClientConstructor;
  decodeSecret: (b: Buffer) => Record<string, unknown>;
}
let protos: Protos | undefined;

function load(): Protos {
  if (protos) return protos;
  const secret = protoDefinition(SDS_SERVICE)['envoy.extensions.transport_sockets.tls.v3.Secret'] as protoLoader.MessageTypeDefinition<object, Record<string, unknown>>;
  protos = {
    Client: serviceClient(SDS_SERVICE),
    decodeSecret: (b) => secret.deserialize(b),
  };
  return protos;
}

type Any = { type_url: string; value: Buffer };
type DataSource = { inline_bytes?: Buffer };

export function decodeSecretAny(any: Any): DecodedSecret {
  if (any.type_url !== SECRET_TYPE_URL) throw new Error(`unexpected resource type ${any.type_url}`);
  const s = load().decodeSecret(any.value) as {
    name: string;
    tls_certificate?: { certificate_chain?: DataSource; private_key?: DataSource };
    validation_context?: { trusted_ca?: DataSource };
  };
  const out: DecodedSecret = { name: s.name };
  if (s.tls_certificate) {
    out.chainPem = s.tls_certificate.certificate_chain?.inline_bytes?.toString();
    out.privateKeyPem = s.tls_certificate.private_key?.inline_bytes?.toString();
  }
  if (s.validation_context) out.bundlePem = s.validation_context.trusted_ca?.inline_bytes?.toString();
  return out;
}

export function sdsClient(target: string, credentials = grpc.credentials.createInsecure()): grpc.Client & Record<string, Function> {
  const { Client } = load();
  return new Client(target, credentials, { 'grpc.max_receive_message_length': 4 << 20 }) as grpc.Client & Record<string, Function>;
}

/** A waitable queue of responses. */
class Responses {
  readonly all: ReceivedResponse[] = [];
  #waiters: Array<{ count: number; resolve: () => void }> = [];
  error: grpc.ServiceError | undefined;
  #errorWaiters: Array<(e: grpc.ServiceError) => void> = [];

  push(r: ReceivedResponse): void {
    this.all.push(r);
    this.#waiters = this.#waiters.filter((w) => (this.all.length >= w.count ? (w.resolve(), false) : true));
  }

  fail(e: grpc.ServiceError): void {
    this.error = e;
    for (const w of this.#errorWaiters.splice(0)) w(e);
  }

  /** Resolves when at least `count` responses have arrived. */
  waitFor(count: number, timeoutMs = 10_000): Promise<ReceivedResponse> {
    if (this.all.length >= count) return Promise.resolve(this.all[count - 1]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`waited ${timeoutMs} ms for response #${count}; got ${this.all.length}`)), timeoutMs);
      this.#waiters.push({ count, resolve: () => (clearTimeout(timer), resolve(this.all[count - 1]!)) });
    });
  }

  /** Resolves with the first response (from the start) that carries secret `name`. */
  async waitForSecret(name: string, timeoutMs = 10_000): Promise<ReceivedResponse> {
    for (let n = 1; ; n++) {
      const r = await this.waitFor(n, timeoutMs);
      if (r.secrets.has(name)) return r;
    }
  }

  waitForError(timeoutMs = 10_000): Promise<grpc.ServiceError> {
    if (this.error) return Promise.resolve(this.error);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no error arrived')), timeoutMs);
      this.#errorWaiters.push((e) => (clearTimeout(timer), resolve(e)));
    });
  }
}

export interface EnvoyLikeStreamOptions {
  names: string[];
  typeUrl?: string;
  /** NACK the nth response (1-based) instead of ACKing it. */
  nackResponse?: number;
  nodeId?: string;
  metadata?: grpc.Metadata;
}

/** StreamSecrets the way Envoy uses it: subscribe, ACK each response, optionally NACK one. */
export class EnvoyLikeStream {
  readonly responses = new Responses();
  readonly sent: Record<string, unknown>[] = [];
  readonly #call: grpc.ClientDuplexStream<object, { version_info: string; nonce: string; resources: Any[] }>;
  #names: string[];
  readonly #opts: EnvoyLikeStreamOptions;
  #lastVersion = '';
  #lastNonce = '';

  constructor(client: grpc.Client & Record<string, Function>, opts: EnvoyLikeStreamOptions) {
    this.#opts = opts;
    this.#names = opts.names;
    this.#call = client.StreamSecrets!(opts.metadata ?? new grpc.Metadata());
    this.#call.on('data', (res) => {
      const secrets = new Map<string, DecodedSecret>();
      for (const any of res.resources ?? []) {
        const s = decodeSecretAny(any);
        secrets.set(s.name, s);
      }
      this.responses.push({ version: res.version_info, nonce: res.nonce, secrets, removed: [], atMs: Date.now() });
      const n = this.responses.all.length;
      if (n === opts.nackResponse) {
        this.#send({ version_info: this.#lastVersion, response_nonce: res.nonce, error_detail: { code: 3, message: 'test NACK: rejecting this secret' } });
      } else {
        this.#lastVersion = res.version_info;
        this.#send({ version_info: res.version_info, response_nonce: res.nonce });
      }
      this.#lastNonce = res.nonce;
    });
    this.#call.on('error', (e: grpc.ServiceError) => this.responses.fail(e));
    this.#send({ version_info: '' });
  }

  #send(fields: Record<string, unknown>): void {
    const req = {
      node: { id: this.#opts.nodeId ?? 'sidecar~10.0.0.1~test.default~default.svc.cluster.local', cluster: 'test' },
      resource_names: this.#names,
      type_url: this.#opts.typeUrl ?? SECRET_TYPE_URL,
      ...fields,
    };
    this.sent.push(req);
    this.#call.write(req);
  }

  /** Sends a request as it is (for protocol edge cases). */
  sendRaw(fields: Record<string, unknown>): void {
    this.#send(fields);
  }

  /** Changes the subscription (Envoy does this when listeners/clusters change). */
  resubscribe(names: string[]): void {
    this.#names = names;
    this.#send({ version_info: this.#lastVersion, response_nonce: this.#lastNonce });
  }

  close(): void {
    this.#call.cancel();
  }
}

/** DeltaSecrets the way Envoy uses it. */
export class EnvoyLikeDeltaStream {
  readonly responses = new Responses();
  readonly #call: grpc.ClientDuplexStream<object, { system_version_info: string; nonce: string; resources: { name: string; version: string; resource: Any }[]; removed_resources: string[] }>;

  constructor(client: grpc.Client & Record<string, Function>, subscribe: string[], initialVersions: Record<string, string> = {}) {
    this.#call = client.DeltaSecrets!(new grpc.Metadata());
    this.#call.on('data', (res) => {
      const secrets = new Map<string, DecodedSecret>();
      for (const r of res.resources ?? []) secrets.set(r.name, decodeSecretAny(r.resource));
      this.responses.push({ version: res.system_version_info, nonce: res.nonce, secrets, removed: res.removed_resources ?? [], atMs: Date.now() });
      this.#call.write({ type_url: SECRET_TYPE_URL, response_nonce: res.nonce });
    });
    this.#call.on('error', (e: grpc.ServiceError) => this.responses.fail(e));
    this.#call.write({ type_url: SECRET_TYPE_URL, resource_names_subscribe: subscribe, initial_resource_versions: initialVersions });
  }

  update(subscribe: string[], unsubscribe: string[]): void {
    this.#call.write({ type_url: SECRET_TYPE_URL, resource_names_subscribe: subscribe, resource_names_unsubscribe: unsubscribe });
  }

  close(): void {
    this.#call.cancel();
  }
}

/** FetchSecrets (unary). */
export function fetchSecrets(client: grpc.Client & Record<string, Function>, names: string[], versionInfo = '', deadlineMs = 5000): Promise<ReceivedResponse> {
  return new Promise((resolve, reject) => {
    client.FetchSecrets!(
      { resource_names: names, type_url: SECRET_TYPE_URL, version_info: versionInfo },
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err: grpc.ServiceError | null, res: { version_info: string; nonce: string; resources: Any[] }) => {
        if (err) return reject(err);
        const secrets = new Map<string, DecodedSecret>();
        for (const any of res.resources ?? []) {
          const s = decodeSecretAny(any);
          secrets.set(s.name, s);
        }
        resolve({ version: res.version_info, nonce: res.nonce, secrets, removed: [], atMs: Date.now() });
      },
    );
  });
}
