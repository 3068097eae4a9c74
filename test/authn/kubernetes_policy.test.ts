// Identity policy (--allow-namespaces, --deny-namespaces, --deny-ids) on authenticated callers,
// from TokenReview or any other authenticator: denials name the rule and surface as PERMISSION_DENIED.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticateWithChain } from '../../src/authn/chain.ts';
import { createIdentityPolicy } from '../../src/authn/policy.ts';
import type { Caller } from '../../src/authn/types.ts';
import { isMeshcaError } from '../../src/errors/index.ts';
import { formatSpiffeId, kubernetesSpiffeId } from '../../src/spiffe/index.ts';
import { authorizeCaller } from '../../src/server/index.ts';
import { kubeAuth, startHarness, type Harness } from './kubernetes_harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const caller = (ns: string, sa: string): Caller => ({ spiffeId: kubernetesSpiffeId('cluster.local', ns, sa), authenticator: 'test', namespace: ns, serviceAccount: sa });

describe('identity policy', () => {
  it('denies listed identities and namespaces, and namespaces outside the allow list, naming the rule', () => {
    const policy = createIdentityPolicy({ allowNamespaces: ['shop', 'pay'], denyNamespaces: ['kube-system'], denyIds: ['spiffe://cluster.local/ns/shop/sa/legacy'] });
    expect(policy.check(caller('shop', 'web'))).toEqual({ ok: true });
    expect(policy.check(caller('shop', 'legacy'))).toEqual({ ok: false, rule: 'deny-ids', reason: 'identity spiffe://cluster.local/ns/shop/sa/legacy is on the deny list (--deny-ids)' });
    expect(policy.check(caller('kube-system', 'x'))).toEqual({ ok: false, rule: 'deny-namespaces', reason: 'namespace "kube-system" is denied (--deny-namespaces)' });
    expect(policy.check(caller('dev', 'x'))).toEqual({ ok: false, rule: 'allow-namespaces', reason: 'namespace "dev" is not allowed (--allow-namespaces: shop, pay)' });
  });

  it('reads the namespace from the SPIFFE ID when the authenticator did not set one (mTLS renewal)', () => {
    const policy = createIdentityPolicy({ denyNamespaces: ['dev'] });
    expect(policy.check({ spiffeId: kubernetesSpiffeId('cluster.local', 'dev', 'x'), authenticator: 'mtls' })).toMatchObject({ ok: false, rule: 'deny-namespaces' });
    const strict = createIdentityPolicy({ allowNamespaces: ['shop'] });
    expect(strict.check({ spiffeId: formatSpiffeId('cluster.local', 'vm', 'db'), authenticator: 'mtls' })).toMatchObject({ ok: false, rule: 'allow-namespaces' });
    expect(createIdentityPolicy({}).check({ spiffeId: formatSpiffeId('cluster.local', 'vm', 'db'), authenticator: 'mtls' })).toEqual({ ok: true });
  });

  it('refuses a malformed --deny-ids entry and a namespace both allowed and denied at start-up', () => {
    expect(() => createIdentityPolicy({ denyIds: ['spiffe://Cluster.local/x'] })).toThrow(/^deny-ids: invalid SPIFFE ID/);
    try {
      createIdentityPolicy({ allowNamespaces: ['a'], denyNamespaces: ['a'] });
      throw new Error('accepted');
    } catch (err) {
      expect(isMeshcaError(err, 'BAD_CONFIG')).toBe(true);
    }
  });

  it('turns a TokenReview caller in a denied namespace into PERMISSION_DENIED after the chain authenticates it', async () => {
    const { authn } = kubeAuth(h);
    const policy = createIdentityPolicy({ denyNamespaces: ['quarantine'] });
    const token = await h.fake.tokens.mint({ namespace: 'quarantine', serviceAccount: 'web', podName: 'q-1' });
    const result = await authenticateWithChain([authn], { bearerToken: token });
    expect(result.caller?.namespace).toBe('quarantine');
    let denied: unknown;
    try {
      authorizeCaller(result.caller!, policy);
    } catch (err) {
      denied = err;
    }
    expect(isMeshcaError(denied, 'PERMISSION_DENIED')).toBe(true);
    expect((denied as Error).message).toBe('namespace "quarantine" is denied (--deny-namespaces)');
    const allowed = await authenticateWithChain([authn], { bearerToken: await h.fake.tokens.mint({ namespace: 'shop', serviceAccount: 'web', podName: 's-1' }) });
    expect(() => authorizeCaller(allowed.caller!, policy)).not.toThrow();
  });
});
