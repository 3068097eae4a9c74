// Two CreateCertificate clients that behave as Istio's own do, so meshca is tested against what a
// real mesh sends and how it reads the answer:
// - IstioAgentClient: istio-agent's citadel client (security/pkg/nodeagent/caclient/providers/
//   citadel/client.go, pkg/istio-agent/agent.go) and its secret cache (security/pkg/nodeagent/cache/
//   secretcache.go);
// - ZtunnelClient: ztunnel's CA client (src/identity/caclient.rs, src/tls/certificate.rs).
// Test use only.

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ISTIO_CA_SERVICE, serviceClient } from '../../src/transport/index.ts';
import { opensslCsr, pemBlocks } from '../helpers/csr.ts';

/** istio-agent's SECRET_TTL default (pkg/istio-agent/agent.go): 24h, sent as validity_duration. */
export const ISTIO_SECRET_TTL_SECONDS = 86_400;
/** Istio's default ISTIO_META_CLUSTER_ID. */
export const ISTIO_DEFAULT_CLUSTER_ID = 'Kubernetes';

type RawClient = grpc.Client & Record<string, Function>;

interface StructValue {
  stringValue?: string;
}

function callCreateCertificate(
  client: RawClient,
  request: { csr: string; validity_duration: number; metadata?: { fields: Record<string, StructValue> } },
  md: grpc.Metadata,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    client.CreateCertificate!(request, md, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: { cert_chain: string[] }) =>
      err ? reject(err) : resolve(res.cert_chain),
    );
  });
}

/** The TLS server name istio-agent verifies: the host of CA_ADDR ("localhost" hosts become istiod's name). */
export function istioServerNameOf(caAddr: string): string {
  const host = caAddr.startsWith('[') ? caAddr.slice(1, caAddr.indexOf(']')) : caAddr.slice(0, caAddr.lastIndexOf(':'));
  return host.includes('localhost') ? 'istiod.istio-system.svc' : host;
}

/** What secretcache.go keeps: the whole chain concatenated, the root from the last element, the leaf's expiry. */
export interface IstioSecretItem {
  readonly certificateChainPem: string;
  readonly rootCertPem: string;
  readonly privateKeyPem: string;
  readonly expireTimeMs: number;
  readonly leaf: X509Certificate;
}

export interface IstioAgentOptions {
  /** CA_ADDR, e.g. meshca.meshca-system.svc:15012 (the name the CA's certificate must carry). */
  readonly caAddr: string;
  /** Where the name in CA_ADDR resolves to in the test: the CA's real listening address. */
  readonly dialAddress: string;
  /** CA_ROOT_CA: read on every connection, as the agent does when it reconnects. */
  readonly caRootCaFile: string;
  /** The projected token file (istio-token). */
  readonly tokenFile: string;
  /** ISTIO_META_CLUSTER_ID. */
  readonly clusterId?: string;
  readonly secretTtlSeconds?: number;
}

export class IstioAgentClient {
  readonly #opts: IstioAgentOptions;

  constructor(opts: IstioAgentOptions) {
    this.#opts = opts;
  }

  /** One CSRSign + secretcache.go's reading of the answer. Throws the gRPC error or a parse error. */
  async fetchWorkloadSecret(): Promise<IstioSecretItem> {
    const csr = opensslCsr('ec-p256');
    const creds = grpc.credentials.createSsl(readFileSync(this.#opts.caRootCaFile));
    const Ctor = serviceClient(ISTIO_CA_SERVICE);
    const client = new Ctor(this.#opts.dialAddress, creds, {
      'grpc.ssl_target_name_override': istioServerNameOf(this.#opts.caAddr),
      'grpc.default_authority': this.#opts.caAddr,
    }) as RawClient;
    try {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${readFileSync(this.#opts.tokenFile, 'utf8').trim()}`);
      md.set('ClusterID', this.#opts.clusterId ?? ISTIO_DEFAULT_CLUSTER_ID);
      const chain = await callCreateCertificate(client, { csr: csr.csrPem, validity_duration: this.#opts.secretTtlSeconds ?? ISTIO_SECRET_TTL_SECONDS }, md);
      // citadel/client.go: "CertChain length is %d, expected more than 1".
      if (chain.length <= 1) throw new Error(`invalid response cert chain (length ${chain.length})`);
      // secretcache.go: concatCerts(all), RootCert = last element, expiry of the first certificate.
      const certificateChainPem = chain.map((c) => (c.endsWith('\n') ? c : `${c}\n`)).join('');
      const leaf = new X509Certificate(pemBlocks(certificateChainPem)[0]!);
      return { certificateChainPem, rootCertPem: chain[chain.length - 1]!, privateKeyPem: csr.keyPem, expireTimeMs: Date.parse(leaf.validTo), leaf };
    } finally {
      client.close();
    }
  }
}

/** What ztunnel's WorkloadCertificate::new makes of an answer: one leaf, one cert per chain element, every root of the last. */
export interface ZtunnelCertificate {
  readonly leaf: X509Certificate;
  readonly chain: readonly X509Certificate[];
  readonly roots: readonly X509Certificate[];
}

export interface ZtunnelOptions {
  readonly dialAddress: string;
  readonly serverName: string;
  readonly rootPem: string;
  /** ztunnel's own projected token. */
  readonly token: string;
  /** CA headers ztunnel is configured with (ClusterID among them in multi-cluster meshes). */
  readonly caHeaders?: Record<string, string>;
  readonly secretTtlSeconds?: number;
}

export class ZtunnelClient {
  readonly #opts: ZtunnelOptions;
  readonly #client: RawClient;

  constructor(opts: ZtunnelOptions) {
    this.#opts = opts;
    const Ctor = serviceClient(ISTIO_CA_SERVICE);
    this.#client = new Ctor(opts.dialAddress, grpc.credentials.createSsl(Buffer.from(opts.rootPem)), { 'grpc.ssl_target_name_override': opts.serverName }) as RawClient;
  }

  /** fetch_certificate(id) with enable_impersonated_identity: refuses a certificate for anyone else. */
  async fetchCertificate(spiffeId: string): Promise<ZtunnelCertificate> {
    const csr = opensslCsr('ec-p256', { san: `URI:${spiffeId}` });
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${this.#opts.token}`);
    for (const [k, v] of Object.entries(this.#opts.caHeaders ?? {})) md.set(k, v);
    const chain = await callCreateCertificate(
      this.#client,
      { csr: csr.csrPem, validity_duration: this.#opts.secretTtlSeconds ?? ISTIO_SECRET_TTL_SECONDS, metadata: { fields: { ImpersonatedIdentity: { stringValue: spiffeId } } } },
      md,
    );
    if (chain.length === 0) throw new Error(`EmptyResponse(${spiffeId})`);
    // certificate.rs parse_cert: exactly the first PEM block of each element; the last element may hold several roots.
    const single = (pem: string) => new X509Certificate(pemBlocks(pem)[0] ?? pem);
    const leaf = single(chain[0]!);
    const rest = chain.slice(1);
    if (rest.length === 0) throw new Error('InvalidRootCert: no root certificate present');
    const roots = pemBlocks(rest[rest.length - 1]!).map((p) => new X509Certificate(p));
    const intermediates = rest.slice(0, -1).map(single);
    // caclient.rs: "expected identity {:?}, got {:?}" → Error::SanError.
    const uri = /URI:([^,\s]+)/.exec(leaf.subjectAltName ?? '')?.[1];
    if (uri !== spiffeId) throw new Error(`SanError: expected identity ${spiffeId}, got ${uri ?? 'none'}`);
    return { leaf, chain: intermediates, roots };
  }

  close(): void {
    this.#client.close();
  }
}

/** Does `leaf` chain through `intermediates` to one of `roots` (signatures checked, as Go's x509.Verify would)? */
export function chainsToRoots(leaf: X509Certificate, intermediates: readonly X509Certificate[], roots: readonly X509Certificate[]): boolean {
  let current = leaf;
  for (const next of intermediates) {
    if (!current.checkIssued(next) || !current.verify(next.publicKey)) return false;
    current = next;
  }
  return roots.some((root) => current.checkIssued(root) && current.verify(root.publicKey));
}
