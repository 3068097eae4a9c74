// Istio ambient mode: a ztunnel-like client (its own token, ImpersonatedIdentity in the request
// metadata, refusing any certificate for another identity) against meshca with
// --trusted-node-accounts, pods served by the fake API server's list/watch.

import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';
import { chainsToRoots, ZtunnelClient } from './istio_clients.ts';
import { retryWhileUnavailable, until } from './waits.ts';

const ZTUNNEL = 'spiffe://cluster.local/ns/istio-system/sa/ztunnel';
const WEB = 'spiffe://cluster.local/ns/shop/sa/web';
const API = 'spiffe://cluster.local/ns/pay/sa/api';

const dir = tempDir('meshca-ambient-');
let fake: FakeKubeApiServer;
let ca: TestCa;
let ztunnelA: ZtunnelClient;

async function ztunnelOn(node: string, pod: string, ns = 'istio-system', sa = 'ztunnel'): Promise<ZtunnelClient> {
  fake.addPod(ns, pod, { serviceAccount: sa, nodeName: node });
  const token = await fake.tokens.mint({ namespace: ns, serviceAccount: sa, podName: pod, audiences: ['istio-ca'] });
  return new ZtunnelClient({ dialAddress: ca.server.grpcAddress, serverName: 'meshca.meshca-system.svc', rootPem: ca.rootPem, token });
}

const refusedWith = async (p: Promise<unknown>): Promise<{ code?: number; details?: string }> => {
  try {
    await p;
  } catch (err) {
    return err as { code?: number; details?: string };
  }
  throw new Error('expected a refusal');
};

async function issuances(): Promise<Record<string, unknown>[]> {
  const records = await ca.server.context.fullLedger!.query({ type: 'issuance', order: 'asc', limit: 10_000 });
  return records.map((r) => r.event as unknown as Record<string, unknown>).filter((e) => e.channel === 'CreateCertificate');
}

beforeAll(async () => {
  fake = await FakeKubeApiServer.start({ namespaces: ['default', 'kube-system', 'istio-system', 'meshca-system', 'shop', 'pay'] });
  fake.addPod('shop', 'web-1', { serviceAccount: 'web', nodeName: 'node-a' });
  fake.addPod('pay', 'api-1', { serviceAccount: 'api', nodeName: 'node-b' });
  ca = await startTestCa([
    '--db', `sqlite:${join(dir.path, 'ledger.db')}`,
    '--dev-tokens=false',
    '--authn', 'tokenreview',
    '--kubeconfig', fake.writeKubeconfig(dir.path),
    '--audience', 'istio-ca',
    '--trusted-node-accounts', 'istio-system/ztunnel',
  ]);
  ztunnelA = await ztunnelOn('node-a', 'ztunnel-a');
});

afterAll(async () => {
  ztunnelA?.close();
  await ca?.stop();
  await fake?.close();
  dir.cleanup();
});

describe('ztunnel asking for workload identities', () => {
  it('gets the identity of a pod on its own node, and the ledger records the workload, the node agent and the node', async () => {
    const cert = await retryWhileUnavailable(() => ztunnelA.fetchCertificate(WEB));
    expect(cert.leaf.subjectAltName).toBe(`URI:${WEB}`);
    expect(chainsToRoots(cert.leaf, cert.chain, cert.roots)).toBe(true);
    const [last] = (await issuances()).slice(-1);
    expect(last).toMatchObject({
      decision: 'granted',
      spiffeId: WEB,
      namespace: 'shop',
      serviceAccount: 'web',
      nodeName: 'node-a',
      authenticator: 'tokenreview',
      detail: { clusterId: 'Kubernetes', impersonatedBy: ZTUNNEL, impersonatedByPod: 'ztunnel-a', impersonatedByAuthenticator: 'tokenreview' },
    });
  });

  it('is refused a pod on another node, UNAUTHENTICATED naming the rule, and nothing is issued', async () => {
    const granted = (await issuances()).filter((e) => e.decision === 'granted').length;
    const err = await refusedWith(retryWhileUnavailable(() => ztunnelA.fetchCertificate(API)));
    expect(err).toMatchObject({ code: status.UNAUTHENTICATED, details: 'ImpersonatedIdentity refused: no pod of service account pay/api runs on node "node-a" (--trusted-node-accounts)' });
    expect((await issuances()).filter((e) => e.decision === 'granted').length).toBe(granted);
    const [last] = (await issuances()).slice(-1);
    expect(last).toMatchObject({ decision: 'denied', errorCode: 'UNAUTHENTICATED', spiffeId: ZTUNNEL, nodeName: 'node-a', detail: { clusterId: 'Kubernetes', impersonationRequested: API } });
  });

  it('refuses a caller that is not a trusted node agent, never falling back to its own identity', async () => {
    const impostor = await ztunnelOn('node-a', 'web-2', 'shop', 'web');
    try {
      for (const id of [WEB, API]) {
        const err = await refusedWith(retryWhileUnavailable(() => impostor.fetchCertificate(id)));
        expect(err).toMatchObject({ code: status.UNAUTHENTICATED, details: `ImpersonatedIdentity refused: ${WEB} is not a trusted node agent (--trusted-node-accounts)` });
      }
    } finally {
      impostor.close();
    }
  });

  it('refuses identities outside the trust domain or not of the Kubernetes form', async () => {
    expect(await refusedWith(retryWhileUnavailable(() => ztunnelA.fetchCertificate('spiffe://other.example/ns/shop/sa/web')))).toMatchObject({
      code: status.UNAUTHENTICATED,
      details: expect.stringMatching(/^ImpersonatedIdentity refused: trust domain "other.example" is not this CA's/),
    });
    expect(await refusedWith(retryWhileUnavailable(() => ztunnelA.fetchCertificate('spiffe://cluster.local/workload/web')))).toMatchObject({
      code: status.UNAUTHENTICATED,
      details: expect.stringMatching(/is not of the form spiffe:\/\/<trust domain>\/ns\/<namespace>\/sa\/<service account>/),
    });
  });

  it('follows pods through the watch, with no API call per request', async () => {
    const podCalls = () => fake.calls.filter((c) => c.path.includes('/pods')).length;
    const before = podCalls();
    fake.addPod('pay', 'api-2', { serviceAccount: 'api', nodeName: 'node-a' });
    await until(() => ztunnelA.fetchCertificate(API).then(() => true, () => false), 'the watch to add api-2');
    for (let i = 0; i < 5; i++) await ztunnelA.fetchCertificate(WEB);
    expect(podCalls()).toBe(before);
    fake.deletePod('pay', 'api-2');
    await until(() => ztunnelA.fetchCertificate(API).then(() => false, () => true), 'the watch to delete api-2');
    expect(podCalls()).toBe(before);
  });

  it('a ztunnel on another node gets only that node\'s workloads', async () => {
    const ztunnelB = await ztunnelOn('node-b', 'ztunnel-b');
    try {
      expect((await retryWhileUnavailable(() => ztunnelB.fetchCertificate(API))).leaf.subjectAltName).toBe(`URI:${API}`);
      expect(await refusedWith(ztunnelB.fetchCertificate(WEB))).toMatchObject({ code: status.UNAUTHENTICATED, details: expect.stringContaining('runs on node "node-b"') });
    } finally {
      ztunnelB.close();
    }
  });
});

describe('a CA that trusts no node agents', () => {
  it('refuses ImpersonatedIdentity from anyone, naming --trusted-node-accounts', async () => {
    const plain = await startTestCa(['--dev-tokens=false', '--authn', 'tokenreview', '--kubeconfig', fake.writeKubeconfig(dir.path, { file: 'plain.kubeconfig' }), '--audience', 'istio-ca']);
    const token = await fake.tokens.mint({ namespace: 'istio-system', serviceAccount: 'ztunnel', podName: 'ztunnel-a', audiences: ['istio-ca'] });
    const client = new ZtunnelClient({ dialAddress: plain.server.grpcAddress, serverName: 'meshca.meshca-system.svc', rootPem: plain.rootPem, token });
    try {
      expect(await refusedWith(client.fetchCertificate(WEB))).toMatchObject({
        code: status.UNAUTHENTICATED,
        details: 'ImpersonatedIdentity refused: this CA trusts no node agents (--trusted-node-accounts is empty)',
      });
    } finally {
      client.close();
      await plain.stop();
    }
  });
});
