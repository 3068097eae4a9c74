// Istio sidecars and multi-cluster meshes against a real meshca: an istio-agent-like client
// (CA_ADDR's host as the TLS name, CA_ROOT_CA file, ClusterID header, 86400 s) in the local
// cluster and in a second one (two fake API servers), an unknown cluster, and Istio's order of
// checks (credentials before the CSR).

import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr, opensslVerify, pemBlocks } from '../helpers/csr.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';
import { chainsToRoots, IstioAgentClient, ISTIO_SECRET_TTL_SECONDS } from './istio_clients.ts';

const dir = tempDir('meshca-istio-');
let local: FakeKubeApiServer;
let remote: FakeKubeApiServer;
let ca: TestCa;
let rootFile: string;

beforeAll(async () => {
  [local, remote] = await Promise.all([FakeKubeApiServer.start(), FakeKubeApiServer.start()]);
  ca = await startTestCa([
    '--db', `sqlite:${join(dir.path, 'ledger.db')}`,
    '--dev-tokens=false',
    '--authn', 'tokenreview',
    '--kubeconfig', local.writeKubeconfig(dir.path, { file: 'local.kubeconfig' }),
    '--cluster', `cluster-2=${remote.writeKubeconfig(dir.path, { file: 'remote.kubeconfig' })}`,
    '--audience', 'istio-ca,meshca',
  ]);
  // The meshca-root-cert ConfigMap as mounted into the sidecar (proxyMetadata.CA_ROOT_CA).
  rootFile = join(dir.path, 'root-cert.pem');
  writeFileSync(rootFile, ca.rootPem);
});

afterAll(async () => {
  await ca?.stop();
  await Promise.all([local?.close(), remote?.close()]);
  dir.cleanup();
});

async function tokenFile(fake: FakeKubeApiServer, name: string, opts: { ns?: string; sa?: string; pod?: string; aud?: string } = {}): Promise<string> {
  const path = join(dir.path, `${name}.token`);
  writeFileSync(path, await fake.tokens.mint({ namespace: opts.ns ?? 'shop', serviceAccount: opts.sa ?? 'web', podName: opts.pod ?? `${name}-pod`, audiences: [opts.aud ?? 'istio-ca'] }));
  return path;
}

function agent(caAddr: string, token: string, clusterId?: string): IstioAgentClient {
  return new IstioAgentClient({ caAddr, dialAddress: ca.server.grpcAddress, caRootCaFile: rootFile, tokenFile: token, ...(clusterId ? { clusterId } : {}) });
}

async function issuanceRecords(): Promise<Record<string, unknown>[]> {
  const records = await ca.server.context.fullLedger!.query({ type: 'issuance', order: 'asc', limit: 10_000 });
  return records.map((r) => r.event as unknown as Record<string, unknown>).filter((e) => e.type === 'issuance' && e.channel === 'CreateCertificate');
}

describe('an istio-agent sidecar', () => {
  it('in the local cluster gets its identity for 24 h, whichever Service name CA_ADDR uses, and the chain verifies as secretcache.go reads it', async () => {
    const token = await tokenFile(local, 'local');
    for (const caAddr of ['meshca.meshca-system.svc:15012', 'meshca.meshca-system.svc.cluster.local:15012', 'meshca.meshca-system:15012']) {
      const secret = await agent(caAddr, token).fetchWorkloadSecret();
      expect(secret.leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/web');
      expect(secret.expireTimeMs - Date.parse(secret.leaf.validFrom)).toBeGreaterThanOrEqual(ISTIO_SECRET_TTL_SECONDS * 1000);
      const certs = pemBlocks(secret.certificateChainPem).map((p) => new X509Certificate(p));
      const roots = pemBlocks(secret.rootCertPem).map((p) => new X509Certificate(p));
      expect(chainsToRoots(certs[0]!, certs.slice(1, -roots.length), roots)).toBe(true);
      opensslVerify(secret.rootCertPem, pemBlocks(secret.certificateChainPem).slice(1).join(''), pemBlocks(secret.certificateChainPem)[0]!);
    }
    const [last] = (await issuanceRecords()).slice(-1);
    expect(last).toMatchObject({ decision: 'granted', spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', authenticator: 'tokenreview', detail: { clusterId: 'Kubernetes' } });
  });

  it('verifies the CA by the host of CA_ADDR: a name the serving certificate lacks fails the TLS handshake, and a localhost CA_ADDR expects istiod\'s name', async () => {
    const token = await tokenFile(local, 'wrong-name');
    await expect(agent('istiod.istio-system.svc:15012', token).fetchWorkloadSecret()).rejects.toMatchObject({ code: status.UNAVAILABLE });
    await expect(agent('localhost:15012', token).fetchWorkloadSecret()).rejects.toMatchObject({ code: status.UNAVAILABLE });
  });

  it('accepts every audience in --audience (istio-ca and meshca)', async () => {
    const secret = await agent('meshca.meshca-system.svc:15012', await tokenFile(local, 'meshca-aud', { aud: 'meshca' })).fetchWorkloadSecret();
    expect(secret.leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/web');
    await expect(agent('meshca.meshca-system.svc:15012', await tokenFile(local, 'other-aud', { aud: 'vault' })).fetchWorkloadSecret()).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
      details: expect.stringContaining('does not include any of "istio-ca", "meshca"'),
    });
  });

  it('in a second cluster is reviewed by that cluster\'s API server (ClusterID), and the ledger records the cluster', async () => {
    const token = await tokenFile(remote, 'remote', { ns: 'payments', sa: 'api' });
    const localBefore = local.tokenReviewCount();
    const remoteBefore = remote.tokenReviewCount();
    const secret = await agent('meshca.meshca-system.svc:15012', token, 'cluster-2').fetchWorkloadSecret();
    expect(secret.leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/payments/sa/api');
    expect(remote.tokenReviewCount() - remoteBefore).toBe(1);
    expect(local.tokenReviewCount() - localBefore).toBe(0);
    const [last] = (await issuanceRecords()).slice(-1);
    expect(last).toMatchObject({ decision: 'granted', spiffeId: 'spiffe://cluster.local/ns/payments/sa/api', podName: 'remote-pod', detail: { clusterId: 'cluster-2' } });
  });

  it('from a second cluster but without its ClusterID is reviewed locally and refused', async () => {
    const token = await tokenFile(remote, 'remote-unnamed');
    await expect(agent('meshca.meshca-system.svc:15012', token, 'Kubernetes').fetchWorkloadSecret()).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
      details: expect.stringContaining('Kubernetes TokenReview did not authenticate the token'),
    });
  });

  it('naming an unknown cluster is UNAUTHENTICATED, names the cluster, asks no API server and issues nothing', async () => {
    const token = await tokenFile(local, 'unknown-cluster');
    const before = local.tokenReviewCount() + remote.tokenReviewCount();
    const issuedBefore = (await issuanceRecords()).filter((e) => e.decision === 'granted').length;
    await expect(agent('meshca.meshca-system.svc:15012', token, 'cluster-9').fetchWorkloadSecret()).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
      details: 'unknown cluster "cluster-9" (ClusterID header); this CA reviews tokens of: Kubernetes, cluster-2 (--cluster-id, --cluster)',
    });
    expect(local.tokenReviewCount() + remote.tokenReviewCount()).toBe(before);
    expect((await issuanceRecords()).filter((e) => e.decision === 'granted').length).toBe(issuedBefore);
  });

  it('refuses a request with no credentials and an empty CSR as UNAUTHENTICATED, as Istio does, before looking at the CSR', async () => {
    const client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'meshca.meshca-system.svc' });
    try {
      await expect(client.createCertificate({ csr: '' })).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
      await expect(client.createCertificate({ csr: 'not a csr' })).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
      const token = await local.tokens.mint({ namespace: 'shop', serviceAccount: 'web', audiences: ['istio-ca'] });
      await expect(client.createCertificate({ csr: '', token })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/csr \(field 1\) is empty/) });
      await client.createCertificate({ csr: opensslCsr().csrPem, token });
    } finally {
      client.close();
    }
  });
});

describe('the CA serving certificate', () => {
  it('carries every Service name in the configured cluster domain and the IP addresses given with --san', async () => {
    const other = await startTestCa(['--namespace', 'istio-system', '--cluster-domain', 'corp.example', '--san', '10.96.0.15,ca.example.com,fd00::15']);
    try {
      const [host, port] = [other.server.grpcAddress.slice(0, other.server.grpcAddress.lastIndexOf(':')), Number(other.server.grpcAddress.slice(other.server.grpcAddress.lastIndexOf(':') + 1))];
      const cert = await new Promise<X509Certificate>((resolve, reject) => {
        const s = tls.connect({ host, port, ca: other.rootPem, ALPNProtocols: ['h2'], servername: 'meshca.istio-system.svc.corp.example' });
        s.once('secureConnect', () => (resolve(s.getPeerX509Certificate()!), s.destroy()));
        s.once('error', reject);
      });
      for (const name of ['meshca', 'meshca.istio-system', 'meshca.istio-system.svc', 'meshca.istio-system.svc.corp.example', 'localhost', 'ca.example.com']) {
        expect(cert.checkHost(name, { subject: 'never' }), name).toBe(name);
      }
      for (const ip of ['127.0.0.1', '10.96.0.15', 'FD00:0:0:0:0:0:0:15']) expect(cert.checkIP(ip), ip).toBe(ip);
      expect(cert.subjectAltName).not.toMatch(/DNS:10\.96/);
    } finally {
      await other.stop();
    }
  });
});
