// `meshca serve` with the Kubernetes authenticators and the identity policy switched on by flags:
// the same CreateCertificate, now vouched for by TokenReview against a fake API server over HTTPS.

import { X509Certificate } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';

let api: FakeKubeApiServer;
let ca: TestCa;
let client: CaClient;
const dir = tempDir();

beforeAll(async () => {
  api = await FakeKubeApiServer.start();
  const kubeconfig = api.writeKubeconfig(dir.path);
  ca = await startTestCa(['--authn', 'tokenreview', '--kubeconfig', kubeconfig, '--dev-tokens=false', '--deny-namespaces', 'kube-system']);
  client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
});

afterAll(async () => {
  client?.close();
  await ca?.stop();
  await api?.close();
  dir.cleanup();
});

describe('serve --authn tokenreview', () => {
  it('issues to a bound service-account token the API server vouches for, with its pod', async () => {
    const token = await api.tokens.mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-7' });
    const { certChain } = await client.createCertificate({ csr: opensslCsr().csrPem, token });
    expect(new X509Certificate(certChain[0]!).subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/web');
    expect(api.tokenReviewCount()).toBeGreaterThanOrEqual(1);
  });

  it('refuses a token whose pod was deleted', async () => {
    const token = await api.tokens.mint({ namespace: 'shop', serviceAccount: 'web', podName: 'gone-1' });
    api.tokens.deletePod('shop', 'gone-1');
    await expect(client.createCertificate({ csr: opensslCsr().csrPem, token })).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
  });

  it('refuses a denied namespace with PERMISSION_DENIED naming the rule', async () => {
    const token = await api.tokens.mint({ namespace: 'kube-system', serviceAccount: 'admin', podName: 'x-1' });
    await expect(client.createCertificate({ csr: opensslCsr().csrPem, token })).rejects.toMatchObject({
      code: status.PERMISSION_DENIED,
      details: expect.stringMatching(/namespace "kube-system" is denied \(--deny-namespaces\)/),
    });
  });

  it('no longer trusts development tokens when --dev-tokens=false', async () => {
    const { loadDevIssuer } = await import('../../src/authn/index.ts');
    const dev = await loadDevIssuer(ca.keysDir, true);
    const token = await dev.mint({ namespace: 'shop', serviceAccount: 'web', audience: 'meshca', ttlMs: 60_000, nowMs: Date.now() });
    await expect(client.createCertificate({ csr: opensslCsr().csrPem, token })).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
  });
});
