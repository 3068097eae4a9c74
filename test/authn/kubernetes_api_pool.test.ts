// The TokenReview client's connection pool to the API server: one shared pool, rebuilt from the
// kubeconfig every API_POOL_MAX_AGE_MS (so rotated TLS files are read again), the old one closed.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_POOL_MAX_AGE_MS, createApiConnectionPool } from '../../src/authn/kubernetes/index.ts';
import { loadKubeconfigText } from '../../src/kube/index.ts';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import { FakeClock } from '../fakes/clock.ts';

let fake: FakeKubeApiServer;

beforeAll(async () => {
  fake = await FakeKubeApiServer.start();
});

afterAll(async () => {
  await fake.close();
});

describe('API server connection pool', () => {
  it('hands out one pool until it is API_POOL_MAX_AGE_MS old, then a new one, closing the old', async () => {
    const clock = new FakeClock();
    const pool = createApiConnectionPool({ kubeConfig: fake.kubeConfig(), clock, connections: 4 });
    const first = await pool.dispatcher();
    expect(first).toBeDefined();
    await clock.advance(API_POOL_MAX_AGE_MS - 1);
    expect(await pool.dispatcher()).toBe(first);
    await clock.advance(1);
    const second = await pool.dispatcher();
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    expect(first!.closed).toBe(true);
    expect(second!.closed).toBe(false);
    await pool.close();
    expect(second!.closed).toBe(true);
  });

  it('leaves a proxied cluster to client-node’s own dispatcher', async () => {
    const kc = loadKubeconfigText(
      JSON.stringify({
        clusters: [{ name: 'proxied', cluster: { server: fake.url, 'certificate-authority-data': Buffer.from(fake.caPem).toString('base64'), 'proxy-url': 'http://127.0.0.1:3128' } }],
        users: [{ name: 'meshca', user: { token: 'x' } }],
        contexts: [{ name: 'proxied', context: { cluster: 'proxied', user: 'meshca' } }],
        'current-context': 'proxied',
      }),
      '/nonexistent/kubeconfig',
    );
    expect(kc.delegated).toBe(true);
    const pool = createApiConnectionPool({ kubeConfig: kc, clock: new FakeClock(), connections: 4 });
    expect(await pool.dispatcher()).toBeUndefined();
  });
});
