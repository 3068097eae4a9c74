import { describe, expect, it } from 'vitest';
import { formatSpiffeId, kubernetesIdentityOf, kubernetesSpiffeId, parseSpiffeId } from '../../src/spiffe/index.ts';
import { MeshcaError } from '../../src/errors/index.ts';

describe('parseSpiffeId', () => {
  it.each([
    'spiffe://cluster.local/ns/default/sa/web',
    'spiffe://example.org',
    'spiffe://a-b_c.d9/x/Y.z-_/0',
  ])('accepts %s', (id) => {
    expect(parseSpiffeId(id).uri).toBe(id);
  });

  it('splits trust domain and path', () => {
    expect(parseSpiffeId('spiffe://td/ns/a/sa/b')).toMatchObject({ trustDomain: 'td', path: '/ns/a/sa/b' });
  });

  it.each([
    ['', /empty/],
    ['http://cluster.local/ns/a', /scheme must be "spiffe:\/\/"/],
    ['SPIFFE://cluster.local/ns/a', /scheme must be lowercase/],
    ['spiffe://', /trust domain is missing/],
    ['spiffe:///ns/a', /trust domain is missing/],
    ['spiffe://Cluster.local/ns/a', /lowercase letters/],
    ['spiffe://cluster.local:8080/ns/a', /port is not allowed/],
    ['spiffe://user@cluster.local/ns/a', /userinfo is not allowed/],
    ['spiffe://cluster.local/ns/a?x=1', /query is not allowed/],
    ['spiffe://cluster.local/ns/a#frag', /fragment is not allowed/],
    ['spiffe://cluster.local/ns/%41', /percent-encoding/],
    ['spiffe://cluster.local/', /must not end with "\/"/],
    ['spiffe://cluster.local/ns//a', /segments must not be empty/],
    ['spiffe://cluster.local/ns/./a', /segment "\." is not allowed/],
    ['spiffe://cluster.local/ns/../a', /segment "\.\." is not allowed/],
    ['spiffe://cluster.local/ns/a b', /letters, digits/],
    [`spiffe://${'a'.repeat(256)}/x`, /longer than 255/],
    [`spiffe://td/${'a'.repeat(2048)}`, /longer than 2048 bytes/],
  ])('refuses %j naming the rule', (input, rule) => {
    let err: unknown;
    try {
      parseSpiffeId(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MeshcaError);
    expect((err as MeshcaError).code).toBe('BAD_SPIFFE_ID');
    expect((err as MeshcaError).message).toMatch(rule);
  });
});

describe('the Kubernetes form', () => {
  it('builds spiffe://<td>/ns/<ns>/sa/<sa> and reads it back', () => {
    const id = kubernetesSpiffeId('cluster.local', 'shop', 'web');
    expect(id.uri).toBe('spiffe://cluster.local/ns/shop/sa/web');
    expect(kubernetesIdentityOf(id)).toEqual({ namespace: 'shop', serviceAccount: 'web' });
    expect(kubernetesIdentityOf(formatSpiffeId('cluster.local', 'other', 'path'))).toBeUndefined();
  });

  it('refuses names that would not make a valid ID', () => {
    expect(() => kubernetesSpiffeId('cluster.local', '..', 'web')).toThrow(/not a valid Kubernetes namespace/);
    expect(() => kubernetesSpiffeId('cluster.local', 'a/sa/admin', 'web')).toThrow(/not a valid Kubernetes namespace/);
    expect(() => kubernetesSpiffeId('cluster.local', 'shop', 'Web')).toThrow(/not a valid Kubernetes name/);
  });
});
