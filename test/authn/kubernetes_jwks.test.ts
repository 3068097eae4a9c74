// JWKS (offline) and `both` authentication against the fake API server acting as the cluster's
// service-account issuer: discovery, no API call per token, key rotation, and what `both` hands on.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { kubeAuth, refusalOf, startHarness, type Harness } from './kubernetes_harness.ts';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterEach(() => {
  h.fake.resetCalls();
  h.fake.clearFailures();
});

afterAll(async () => {
  await h.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('JWKS authenticator', () => {
  it('verifies bound tokens offline after one discovery and one JWKS fetch, with no TokenReview', async () => {
    const { authn } = kubeAuth(h, { mode: 'jwks' });
    const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web', podName: `web-${i}`, nodeName: 'node-b' })));
    for (const t of tokens) {
      const outcome = await authn.authenticate({ bearerToken: t });
      if (!outcome.ok) throw new Error(outcome.reason);
      expect(outcome.caller).toMatchObject({ authenticator: 'jwks', namespace: 'shop', serviceAccount: 'web', nodeName: 'node-b' });
      expect(outcome.caller.podName).toMatch(/^web-\d+$/);
      expect(outcome.caller.spiffeId.uri).toBe('spiffe://cluster.local/ns/shop/sa/web');
    }
    expect(h.fake.callsByRoute()).toEqual({ 'GET /.well-known/openid-configuration': 1, 'GET /openid/v1/jwks': 1 });
  });

  it('refuses a wrong audience, an expired token, a tampered signature and a sub that disagrees with the claims', async () => {
    const { authn } = kubeAuth(h, { mode: 'jwks' });
    const wrongAud = await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web', audiences: ['vault'] });
    expect(refusalOf(await authn.authenticate({ bearerToken: wrongAud }))).toMatchObject({ kind: 'refused', reason: 'token audience does not include "meshca"' });
    const expired = await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web', issuedAtOffsetSeconds: -7200, expiresInSeconds: 600 });
    expect(refusalOf(await authn.authenticate({ bearerToken: expired })).reason).toBe('token has expired');
    const good = await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web' });
    const [head, body, sig] = good.split('.');
    const otherBody = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body!, 'base64url').toString()), 'kubernetes.io': { namespace: 'kube-system', serviceaccount: { name: 'admin' } }, sub: 'system:serviceaccount:kube-system:admin' })).toString('base64url');
    expect(refusalOf(await authn.authenticate({ bearerToken: `${head}.${otherBody}.${sig}` })).reason).toBe('token signature does not verify (tampered or signed by another key)');
    const lying = await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web', subject: 'system:serviceaccount:kube-system:admin' });
    expect(refusalOf(await authn.authenticate({ bearerToken: lying })).reason).toContain('disagrees with its kubernetes.io claims');
  });

  it('picks up a rotated signing key at the issuer on the first token with the unknown kid', async () => {
    const { authn } = kubeAuth(h, { mode: 'jwks', jwksRefetchCooldownMs: 200 });
    const before = await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web' });
    expect((await authn.authenticate({ bearerToken: before })).ok).toBe(true);
    const newKid = h.fake.tokens.rotateKey({ retireOld: true });
    await sleep(250);
    const after = await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web' });
    const outcome = await authn.authenticate({ bearerToken: after });
    if (!outcome.ok) throw new Error(outcome.reason);
    expect(h.fake.callCount('GET /openid/v1/jwks')).toBe(2);
    expect(JSON.parse(Buffer.from(after.split('.')[0]!, 'base64url').toString()).kid).toBe(newKid);
  });

  it('asks the client to retry, not refuses, a new kid seen within the refetch cooldown; then refuses a key the issuer never published', async () => {
    const { authn } = kubeAuth(h, { mode: 'jwks', jwksRefetchCooldownMs: 300 });
    expect((await authn.authenticate({ bearerToken: await h.fake.tokens.mint({ namespace: 'a', serviceAccount: 'b' }) })).ok).toBe(true);
    const forged = await h.fake.tokens.mint({ namespace: 'a', serviceAccount: 'b', foreignKey: true });
    expect(refusalOf(await authn.authenticate({ bearerToken: forged }))).toMatchObject({ kind: 'unavailable', retryAfterSeconds: 1 });
    await sleep(350);
    expect(refusalOf(await authn.authenticate({ bearerToken: forged }))).toMatchObject({ kind: 'refused', reason: 'token was signed by a key the issuer does not publish' });
  });

  it('discovers an explicitly configured issuer (--oidc-issuer) and skips tokens of other issuers', async () => {
    const { authn } = kubeAuth(h, { mode: 'jwks', oidcIssuer: h.fake.url });
    expect((await authn.authenticate({ bearerToken: await h.fake.tokens.mint({ namespace: 'a', serviceAccount: 'b' }) })).ok).toBe(true);
    const foreignIssuer = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: 'https://elsewhere', aud: 'meshca', exp: 9e9 })).toString('base64url')}.c2ln`;
    expect(refusalOf(await authn.authenticate({ bearerToken: foreignIssuer }))).toMatchObject({ kind: 'skip', reason: 'token issuer "https://elsewhere" is not the cluster\'s service-account issuer' });
  });

  it('answers UNAVAILABLE when the issuer cannot be discovered', async () => {
    const { authn } = kubeAuth(h, { mode: 'jwks', oidcIssuer: 'https://127.0.0.1:1' });
    const r = refusalOf(await authn.authenticate({ bearerToken: await h.fake.tokens.mint({ namespace: 'a', serviceAccount: 'b' }) }));
    expect(r).toMatchObject({ kind: 'unavailable', reason: 'the cluster service-account issuer (OIDC discovery) is unreachable' });
  });

  it('refuses legacy tokens in jwks mode, pointing at TokenReview', async () => {
    const { authn } = kubeAuth(h, { mode: 'jwks', allowLegacyTokens: true });
    const r = refusalOf(await authn.authenticate({ bearerToken: await h.fake.tokens.mintLegacy('shop', 'web') }));
    expect(r.kind).toBe('refused');
    expect(r.reason).toContain('legacy tokens can only be checked with --authn tokenreview or both');
  });
});

describe('both (JWKS first, TokenReview for what JWKS cannot decide)', () => {
  it('accepts a verifiable token from JWKS alone, with no TokenReview', async () => {
    const { authn } = kubeAuth(h, { mode: 'both' });
    const outcome = await authn.authenticate({ bearerToken: await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web', podName: 'w1' }) });
    expect(outcome.ok && outcome.caller.authenticator).toBe('jwks');
    expect(h.fake.tokenReviewCount()).toBe(0);
  });

  it('does not ask TokenReview about a token JWKS refuses', async () => {
    const { authn } = kubeAuth(h, { mode: 'both' });
    const r = refusalOf(await authn.authenticate({ bearerToken: await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web', audiences: ['vault'] }) }));
    expect(r.reason).toBe('token audience does not include "meshca"');
    expect(h.fake.tokenReviewCount()).toBe(0);
  });

  it('hands legacy tokens and kids it cannot resolve yet to TokenReview', async () => {
    const { authn } = kubeAuth(h, { mode: 'both', allowLegacyTokens: true, jwksRefetchCooldownMs: 60_000 });
    const legacy = await authn.authenticate({ bearerToken: await h.fake.tokens.mintLegacy('shop', 'web') });
    expect(legacy.ok && legacy.caller.authenticator).toBe('tokenreview');
    expect((await authn.authenticate({ bearerToken: await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web' }) })).ok).toBe(true);
    h.fake.tokens.rotateKey();
    const rotated = await authn.authenticate({ bearerToken: await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web', podName: 'w2' }) });
    expect(rotated.ok && rotated.caller.authenticator).toBe('tokenreview');
    expect(h.fake.tokenReviewCount()).toBe(2);
  });

  it('falls back to TokenReview when the issuer is unreachable', async () => {
    const { authn } = kubeAuth(h, { mode: 'both', oidcIssuer: 'https://127.0.0.1:1' });
    const outcome = await authn.authenticate({ bearerToken: await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web', podName: 'w3' }) });
    expect(outcome.ok && outcome.caller.authenticator).toBe('tokenreview');
  });

  it('accepts a deleted pod\'s still-valid token from JWKS: only TokenReview mode catches deleted pods', async () => {
    const { authn } = kubeAuth(h, { mode: 'both' });
    const token = await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web', podName: 'w-deleted' });
    h.fake.tokens.deletePod('shop', 'w-deleted');
    expect((await authn.authenticate({ bearerToken: token })).ok).toBe(true);
    const { authn: strict } = kubeAuth(h, { mode: 'tokenreview' });
    expect(refusalOf(await strict.authenticate({ bearerToken: token })).reason).toContain('pods "w-deleted" not found');
  });
});
