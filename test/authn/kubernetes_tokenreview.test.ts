// TokenReview authentication through @kubernetes/client-node against the fake API server over
// HTTPS: who is accepted, who is refused and why, and that the API server is never stormed.

import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../fakes/clock.ts';
import { createKubernetesAuthenticators } from '../../src/authn/kubernetes/index.ts';
import { isMeshcaError } from '../../src/errors/index.ts';
import { Registry } from '../../src/observability/index.ts';
import { driveUntilAnswered, kubeAuth, metric, refusalOf, startHarness, steppableClock, type Harness } from './kubernetes_harness.ts';

let h: Harness;
const issuedTokens: string[] = [];

beforeAll(async () => {
  h = await startHarness();
});

afterEach(() => {
  h.fake.resetCalls();
  h.fake.clearFailures();
  h.fake.latencyMs = 0;
});

afterAll(async () => {
  // Whatever happened, no token may have reached a log line.
  const text = h.logs.join('');
  for (const t of issuedTokens) expect(text.includes(t)).toBe(false);
  expect(text).toContain('tokenId');
  await h.close();
});

async function mint(opts: Parameters<Harness['fake']['tokens']['mint']>[0]): Promise<string> {
  const token = await h.fake.tokens.mint(opts);
  issuedTokens.push(token);
  return token;
}

describe('TokenReview authenticator', () => {
  it('turns a bound projected token into a caller with its SPIFFE ID, pod, node and token facts', async () => {
    const { authn } = kubeAuth(h);
    const token = await mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-7d9f', podUid: '3f1c0d6e-1111-4222-8333-444455556666', nodeName: 'node-a' });
    const outcome = await authn.authenticate({ bearerToken: token, deadlineMs: Date.now() + 5000 });
    if (!outcome.ok) throw new Error(outcome.reason);
    const { caller } = outcome;
    expect(caller.spiffeId.uri).toBe('spiffe://cluster.local/ns/shop/sa/web');
    expect(caller).toMatchObject({ authenticator: 'tokenreview', namespace: 'shop', serviceAccount: 'web', podName: 'web-7d9f', podUid: '3f1c0d6e-1111-4222-8333-444455556666', nodeName: 'node-a' });
    expect(caller.token?.sha256).toBe(createHash('sha256').update(token).digest('hex'));
    expect(caller.token?.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(caller.token?.expMs).toBeGreaterThan(Date.now());
    expect(caller.expiresAtMs).toBe(caller.token?.expMs);
    expect(h.fake.tokenReviewCount()).toBe(1);
  });

  it('refuses a token minted for another audience without asking the API server', async () => {
    const { authn } = kubeAuth(h);
    const token = await mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-a', audiences: ['vault'] });
    const r = refusalOf(await authn.authenticate({ bearerToken: token }));
    expect(r.kind).toBe('refused');
    expect(r.reason).toBe('token audience ["vault"] does not include "meshca"');
    expect(h.fake.tokenReviewCount()).toBe(0);
  });

  it('refuses when TokenReview does not confirm the requested audience', async () => {
    const { authn } = kubeAuth(h);
    const token = await mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-b' });
    h.fake.tokens.register(token, {
      authenticated: true,
      audiences: ['https://kubernetes.default.svc.cluster.local'],
      user: { username: 'system:serviceaccount:shop:web', groups: ['system:serviceaccounts', 'system:authenticated'] },
    });
    const r = refusalOf(await authn.authenticate({ bearerToken: token }));
    expect(r.reason).toContain('did not confirm the audience "meshca"');
  });

  it('refuses a user that is not a service account (not in system:serviceaccounts)', async () => {
    const { authn } = kubeAuth(h);
    const token = await mint({ namespace: 'kube-system', serviceAccount: 'node', podName: 'kubelet-x' });
    h.fake.tokens.register(token, { authenticated: true, audiences: ['meshca'], user: { username: 'system:node:node-a', groups: ['system:nodes', 'system:authenticated'] } });
    const r = refusalOf(await authn.authenticate({ bearerToken: token }));
    expect(r.kind).toBe('refused');
    expect(r.reason).toBe('token belongs to "system:node:node-a", which is not a service account (not in group system:serviceaccounts)');
  });

  it('refuses the bound token of a deleted pod, because TokenReview no longer authenticates it', async () => {
    const { authn } = kubeAuth(h);
    const token = await mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-gone' });
    h.fake.tokens.deletePod('shop', 'web-gone');
    const r = refusalOf(await authn.authenticate({ bearerToken: token }));
    expect(r.kind).toBe('refused');
    expect(r.reason).toBe('Kubernetes TokenReview did not authenticate the token: [invalid bearer token, pods "web-gone" not found]');
  });

  it('refuses legacy secret-based tokens by default, saying why, without an API call', async () => {
    const { authn } = kubeAuth(h);
    const legacy = await h.fake.tokens.mintLegacy('shop', 'web');
    issuedTokens.push(legacy);
    const r = refusalOf(await authn.authenticate({ bearerToken: legacy }));
    expect(r.kind).toBe('refused');
    expect(r.reason).toContain('legacy secret-based service-account token refused: it has no expiry and no audience');
    expect(r.reason).toContain('--allow-legacy-tokens');
    expect(h.fake.tokenReviewCount()).toBe(0);
  });

  it('accepts legacy tokens with allowLegacyTokens and warns once in the log', async () => {
    const { authn } = kubeAuth(h, { allowLegacyTokens: true });
    const before = h.logs.filter((l) => l.includes('--allow-legacy-tokens is on')).length;
    for (const sa of ['web', 'api']) {
      const legacy = await h.fake.tokens.mintLegacy('shop', sa);
      issuedTokens.push(legacy);
      const outcome = await authn.authenticate({ bearerToken: legacy });
      if (!outcome.ok) throw new Error(outcome.reason);
      expect(outcome.caller.spiffeId.uri).toBe(`spiffe://cluster.local/ns/shop/sa/${sa}`);
      expect(outcome.caller.expiresAtMs).toBeUndefined();
    }
    expect(h.logs.filter((l) => l.includes('--allow-legacy-tokens is on')).length - before).toBe(1);
  });

  it('refuses something that is not a JWT without an API call', async () => {
    const { authn } = kubeAuth(h);
    const r = refusalOf(await authn.authenticate({ bearerToken: 'opaque-bootstrap-token.abcdef' }));
    expect(r.reason).toBe('bearer token is not a JWT; Kubernetes service-account tokens are');
    expect(h.fake.tokenReviewCount()).toBe(0);
    expect(refusalOf(await authn.authenticate({})).kind).toBe('skip');
  });

  it('makes exactly one TokenReview per distinct token for 1,000 concurrent authentications of 100 tokens', async () => {
    const { authn, registry } = kubeAuth(h);
    h.fake.latencyMs = 50;
    const tokens = await Promise.all(Array.from({ length: 100 }, (_, i) => mint({ namespace: 'storm', serviceAccount: `sa-${i}`, podName: `pod-${i}` })));
    const outcomes = await Promise.all(Array.from({ length: 1000 }, (_, i) => authn.authenticate({ bearerToken: tokens[i % 100]!, deadlineMs: Date.now() + 10_000 })));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(h.fake.tokenReviewCount()).toBe(100);
    expect(await metric(registry, 'meshca_tokenreview_requests_total', { code: '201' })).toBe(100);
    expect(await metric(registry, 'meshca_tokenreview_coalesced_total')).toBe(900);
    // Later authentications are cache hits and cost nothing.
    await Promise.all(tokens.map((t) => authn.authenticate({ bearerToken: t })));
    expect(await metric(registry, 'meshca_token_cache_hits_total')).toBe(100);
    expect(h.fake.tokenReviewCount()).toBe(100);
  });

  it('reuses its connections to the API server: two at most for reviews one at a time, --kube-burst for 200 at once', async () => {
    const { authn } = kubeAuth(h, { kubeBurst: 8 });
    const tokens = await Promise.all(Array.from({ length: 210 }, (_, i) => mint({ namespace: 'reuse', serviceAccount: `sa-${i}`, podName: `pod-${i}` })));
    const before = h.fake.tlsConnections;
    for (const token of tokens.slice(0, 10)) expect((await authn.authenticate({ bearerToken: token })).ok).toBe(true);
    expect(h.fake.tokenReviewCount()).toBe(10);
    // The pool may open a second connection when the next review starts in the same tick as the
    // previous one's answer, before that connection is marked free; never one per review.
    expect(h.fake.tlsConnections - before).toBeLessThanOrEqual(2);
    h.fake.latencyMs = 20;
    const outcomes = await Promise.all(tokens.slice(10).map((token) => authn.authenticate({ bearerToken: token, deadlineMs: Date.now() + 10_000 })));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(h.fake.tokenReviewCount()).toBe(210);
    expect(h.fake.tlsConnections - before).toBeLessThanOrEqual(8);
  });

  it('keeps a 500-token storm within --kube-qps 10 / --kube-burst 20 and answers everyone before their deadline', async () => {
    // Its own API server on the test's fake clock, so call times and deadlines are in fake time
    // and fake time never passes while a call is in flight.
    const clock = new FakeClock(Date.now());
    const storm = await startHarness({ now: () => clock.now() });
    try {
      const { authn, registry } = kubeAuth(storm, { kubeQps: 10, kubeBurst: 20, clock });
      const tokens = await Promise.all(Array.from({ length: 500 }, async (_, i) => {
        const t = await storm.fake.tokens.mint({ namespace: 'restart', serviceAccount: 'app', podName: `app-${i}` });
        issuedTokens.push(t);
        return t;
      }));
      const deadlineMs = clock.now() + 2_000;
      let answered = 0;
      const storming = Promise.all(
        tokens.map(async (t) => {
          const outcome = await authn.authenticate({ bearerToken: t, deadlineMs });
          answered += 1;
          return { outcome, at: clock.now() };
        }),
      );
      await driveUntilAnswered(clock, () => tokens.length - answered);
      const results = await storming;
      const ok = results.filter((r) => r.outcome.ok).length;
      const unavailable = results.filter((r) => !r.outcome.ok && r.outcome.kind === 'unavailable');
      expect(ok + unavailable.length).toBe(500);
      expect(Math.max(...results.map((r) => r.at))).toBeLessThanOrEqual(deadlineMs);
      expect(unavailable.every((r) => !r.outcome.ok && (r.outcome.retryAfterSeconds ?? 0) >= 1)).toBe(true);
      const calls = storm.fake.tokenReviewCount();
      // Budget: burst + qps · t over the 2 s the storm could last (+1 for the edge of the window).
      expect(calls).toBeLessThanOrEqual(20 + 10 * 2 + 1);
      expect(storm.fake.maxCallsWithin(1_000, 'tokenreviews')).toBeLessThanOrEqual(20 + 10 + 1);
      expect(ok).toBe(calls);
      expect(ok).toBeGreaterThanOrEqual(30);
      expect(await metric(registry, 'meshca_tokenreview_rate_limited_total')).toBeGreaterThan(0);
      expect(storm.logs.join('')).not.toContain(tokens[0]!);
    } finally {
      await storm.close();
    }
  });

  it('keeps cached identities working while the API server is down; new tokens get UNAVAILABLE before their deadline', async () => {
    const clock = new FakeClock(Date.now());
    const { authn } = kubeAuth(h, { clock });
    const known = await mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-cached' });
    const fresh = await mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-new' });
    expect((await authn.authenticate({ bearerToken: known })).ok).toBe(true);
    await h.fake.goDown();
    try {
      expect((await authn.authenticate({ bearerToken: known })).ok).toBe(true);
      const deadlineMs = clock.now() + 600;
      let answered = 0;
      const answer = authn.authenticate({ bearerToken: fresh, deadlineMs }).finally(() => (answered += 1));
      await driveUntilAnswered(clock, () => 1 - answered);
      const r = refusalOf(await answer);
      expect(clock.now()).toBeLessThanOrEqual(deadlineMs);
      expect(r.kind).toBe('unavailable');
      expect(r.reason).toBe('Kubernetes API is unreachable');
      expect(r.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    } finally {
      await h.fake.comeBack();
    }
    // Outages are not cached: the same token passes once the API is back.
    expect((await authn.authenticate({ bearerToken: fresh })).ok).toBe(true);
  });

  it('retries 429 (honouring Retry-After) and 500 inside the deadline', async () => {
    const clock = new FakeClock(Date.now());
    const { authn, registry } = kubeAuth(h, { clock });
    h.fake.injectFailures({ status: 429, count: 1, match: 'tokenreviews', retryAfterSeconds: 1 });
    h.fake.injectFailures({ status: 500, count: 1, match: 'tokenreviews' });
    const token = await mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-retry' });
    const started = clock.now();
    let answered = 0;
    const answer = authn.authenticate({ bearerToken: token, deadlineMs: started + 5_000 }).finally(() => (answered += 1));
    await driveUntilAnswered(clock, () => 1 - answered);
    const outcome = await answer;
    expect(outcome.ok).toBe(true);
    expect(clock.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(h.fake.tokenReviewCount()).toBe(3);
    expect(await metric(registry, 'meshca_tokenreview_requests_total', { code: '429' })).toBe(1);
    expect(await metric(registry, 'meshca_tokenreview_requests_total', { code: '500' })).toBe(1);
  });

  it('answers UNAVAILABLE when a Retry-After would pass the deadline', async () => {
    const { authn } = kubeAuth(h);
    h.fake.injectFailures({ status: 429, count: 1, match: 'tokenreviews', retryAfterSeconds: 30 });
    const token = await mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-throttled' });
    const r = refusalOf(await authn.authenticate({ bearerToken: token, deadlineMs: Date.now() + 1_000 }));
    expect(r).toMatchObject({ kind: 'unavailable', reason: 'Kubernetes API is throttling TokenReview (429)', retryAfterSeconds: 30 });
  });

  it('fails closed with UNAVAILABLE naming RBAC when the CA may not create tokenreviews', async () => {
    const { authn } = kubeAuth(h);
    h.fake.setForbidden('tokenreviews');
    try {
      const token = await mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-rbac' });
      const r = refusalOf(await authn.authenticate({ bearerToken: token }));
      expect(r.kind).toBe('unavailable');
      expect(r.reason).toContain('RBAC');
      expect(h.logs.some((l) => l.includes('create on tokenreviews.authentication.k8s.io'))).toBe(true);
    } finally {
      h.fake.setForbidden('tokenreviews', false);
    }
  });

  it('caches refusals for 10 s and identities until the token cache TTL, by hash only', async () => {
    const clock = steppableClock();
    const { authn } = kubeAuth(h, { clock, tokenCacheTtlMs: 60_000 });
    const gone = await mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-neg' });
    h.fake.tokens.deletePod('shop', 'web-neg');
    await authn.authenticate({ bearerToken: gone });
    await authn.authenticate({ bearerToken: gone });
    expect(h.fake.tokenReviewCount()).toBe(1);
    clock.advance(10_001);
    await authn.authenticate({ bearerToken: gone });
    expect(h.fake.tokenReviewCount()).toBe(2);

    const good = await mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-pos' });
    await authn.authenticate({ bearerToken: good });
    clock.advance(59_000);
    await authn.authenticate({ bearerToken: good });
    expect(h.fake.tokenReviewCount()).toBe(3);
    clock.advance(2_000);
    expect((await authn.authenticate({ bearerToken: good })).ok).toBe(true);
    expect(h.fake.tokenReviewCount()).toBe(4);
  });

  it('never serves a cached identity past its token exp', async () => {
    const clock = steppableClock();
    const { authn } = kubeAuth(h, { clock });
    const short = await mint({ namespace: 'shop', serviceAccount: 'web', podName: 'web-short', expiresInSeconds: 60 });
    expect((await authn.authenticate({ bearerToken: short })).ok).toBe(true);
    clock.advance(91_000);
    const r = refusalOf(await authn.authenticate({ bearerToken: short }));
    expect(r.reason).toBe('token has expired');
    expect(h.fake.tokenReviewCount()).toBe(1);
  });

  it('evicts the least recently used entry when the cache is full', async () => {
    const { authn } = kubeAuth(h, { tokenCacheSize: 2 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((p) => mint({ namespace: 'lru', serviceAccount: 'x', podName: `p-${p}` })));
    for (const t of [a, b, a, c]) await authn.authenticate({ bearerToken: t! });
    expect(h.fake.tokenReviewCount()).toBe(3);
    await authn.authenticate({ bearerToken: a! });
    expect(h.fake.tokenReviewCount()).toBe(3);
    await authn.authenticate({ bearerToken: b! });
    expect(h.fake.tokenReviewCount()).toBe(4);
  });

  it('refuses to start with bad settings, naming the setting', () => {
    const base = { mode: 'tokenreview' as const, audiences: ['meshca'], trustDomain: 'cluster.local', allowLegacyTokens: false, tokenCacheTtlMs: 1, tokenCacheSize: 10, kubeQps: 50, kubeBurst: 100, clock: new FakeClock(0), log: h.log, registry: new Registry() };
    const attempt = (o: object) => {
      try {
        createKubernetesAuthenticators({ ...base, kubeconfigPath: h.kubeconfigPath, ...o });
      } catch (err) {
        return isMeshcaError(err, 'BAD_CONFIG') ? err.message : `unexpected ${String(err)}`;
      }
      return 'accepted';
    };
    expect(attempt({ kubeQps: 0 })).toMatch(/^kube-qps:/);
    expect(attempt({ kubeBurst: 0.5 })).toMatch(/^kube-burst:/);
    expect(attempt({ tokenCacheSize: 0 })).toMatch(/^token-cache-size:/);
    expect(attempt({ kubeconfigPath: '/nonexistent/kubeconfig' })).toMatch(/^kubeconfig: cannot load \/nonexistent\/kubeconfig/);
    expect(attempt({ mode: 'jwks', oidcIssuer: 'http://plain' })).toMatch(/^oidc-issuer:/);
  });
});
