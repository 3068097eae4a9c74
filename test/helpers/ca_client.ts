// A CreateCertificate client for tests: grpc-js over TLS against the CA's root, optionally with a
// bearer token or a client certificate, exactly as an agent or istio-agent would call.

import * as grpc from '@grpc/grpc-js';
import { ISTIO_CA_SERVICE, serviceClient } from '../../src/transport/index.ts';

export interface CaClientOptions {
  address: string;
  rootPem: string;
  /** Override the expected server name (default: the host of `address`). */
  serverName?: string;
  clientCert?: { certPem: string; keyPem: string };
  /** A distinct value gives this client its own connection (grpc-js shares one between identical clients). */
  connection?: number;
}

export interface CreateCertificateResult {
  certChain: string[];
}

export class CaClient {
  readonly #client: grpc.Client & Record<string, Function>;

  constructor(opts: CaClientOptions) {
    const creds = grpc.credentials.createSsl(
      Buffer.from(opts.rootPem),
      opts.clientCert ? Buffer.from(opts.clientCert.keyPem) : null,
      opts.clientCert ? Buffer.from(opts.clientCert.certPem) : null,
    );
    const Ctor = serviceClient(ISTIO_CA_SERVICE);
    this.#client = new Ctor(opts.address, creds, {
      ...(opts.serverName ? { 'grpc.ssl_target_name_override': opts.serverName } : {}),
      ...(opts.connection !== undefined ? { 'grpc.test_connection': opts.connection } : {}),
    }) as grpc.Client & Record<string, Function>;
  }

  createCertificate(req: { csr: string; validityDuration?: number; token?: string; deadlineMs?: number }): Promise<CreateCertificateResult> {
    const md = new grpc.Metadata();
    if (req.token) md.set('authorization', `Bearer ${req.token}`);
    return new Promise((resolve, reject) => {
      this.#client.CreateCertificate!(
        { csr: req.csr, validity_duration: req.validityDuration ?? 0 },
        md,
        { deadline: Date.now() + (req.deadlineMs ?? 10_000) },
        (err: grpc.ServiceError | null, res: { cert_chain: string[] }) => (err ? reject(err) : resolve({ certChain: res.cert_chain })),
      );
    });
  }

  close(): void {
    this.#client.close();
  }
}
