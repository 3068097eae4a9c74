// The one strict X509-SVID reader, fed certificates that go-spiffe's x509svid refuses, and the three
// verifiers that use it: the mTLS renewal authenticator, the agent's check of the CA's answer, and
// the reader of a signing certificate's trust domain.

import { KeyObject, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../fakes/clock.ts';
import { acceptIssuedChain } from '../../src/agent/index.ts';
import { createMtlsAuthenticator } from '../../src/authn/index.ts';
import { isMeshcaError } from '../../src/errors/index.ts';
import { readSigningCertificateId, readSvidSpiffeId } from '../../src/pki/index.ts';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const KU = x509.KeyUsageFlags;
const NOW = Date.now();
const ID = 'spiffe://cluster.local/ns/shop/sa/web';

type KeyPair = { readonly publicKey: CryptoKey; readonly privateKey: CryptoKey };

interface LeafSpec {
  readonly uris?: readonly string[];
  readonly dns?: readonly string[];
  /** undefined: no BasicConstraints extension. */
  readonly ca?: boolean;
  /** undefined: no KeyUsage extension. */
  readonly keyUsage?: number;
}

let rootKeys: KeyPair;
let root: x509.X509Certificate;
let leafKeys: KeyPair;

beforeAll(async () => {
  rootKeys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as KeyPair;
  leafKeys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as KeyPair;
  root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=test root',
    notBefore: new Date(NOW - 3600_000),
    notAfter: new Date(NOW + 86400_000),
    keys: rootKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(KU.keyCertSign | KU.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://cluster.local' }]),
    ],
  });
});

async function leaf(spec: LeafSpec): Promise<{ node: X509Certificate; pem: string }> {
  const names = [...(spec.uris ?? []).map((value) => ({ type: 'url' as const, value })), ...(spec.dns ?? []).map((value) => ({ type: 'dns' as const, value }))];
  const extensions: x509.Extension[] = [];
  if (spec.ca !== undefined) extensions.push(new x509.BasicConstraintsExtension(spec.ca, undefined, true));
  if (spec.keyUsage !== undefined) extensions.push(new x509.KeyUsagesExtension(spec.keyUsage, true));
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, true));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'CN=leaf',
    issuer: root.subject,
    notBefore: new Date(NOW - 60_000),
    notAfter: new Date(NOW + 3600_000),
    publicKey: leafKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: ALG,
    extensions,
  });
  return { node: new X509Certificate(Buffer.from(cert.rawData)), pem: cert.toString('pem') };
}

const GOOD: LeafSpec = { uris: [ID], ca: false, keyUsage: KU.digitalSignature };

// What go-spiffe's x509svid.ParseAndVerify refuses, each with the rule our reader names.
const REFUSED: ReadonlyArray<readonly [string, LeafSpec, RegExp]> = [
  ['no URI SAN', { ...GOOD, uris: [], dns: ['web.shop'] }, /no URI SAN/],
  ['two URI SANs', { ...GOOD, uris: [ID, 'spiffe://cluster.local/ns/shop/sa/admin'] }, /2 URI SANs/],
  ['a URI SAN that is not a SPIFFE ID', { ...GOOD, uris: ['https://cluster.local/ns/shop/sa/web'] }, /not a SPIFFE ID/],
  ['a SPIFFE ID that is not canonical', { ...GOOD, uris: ['spiffe://Cluster.local/ns/shop/sa/web'] }, /not a SPIFFE ID/],
  ['a trust-domain ID with no path', { ...GOOD, uris: ['spiffe://cluster.local'] }, /must have a path/],
  ['CA:TRUE without keyCertSign (which Node reports as not a CA)', { ...GOOD, ca: true }, /must not be a CA/],
  ['keyCertSign', { ...GOOD, keyUsage: KU.digitalSignature | KU.keyCertSign }, /keyCertSign/],
  ['cRLSign', { ...GOOD, keyUsage: KU.digitalSignature | KU.cRLSign }, /cRLSign/],
  ['no digitalSignature', { ...GOOD, keyUsage: KU.keyEncipherment }, /digitalSignature/],
  ['no KeyUsage extension at all', { uris: [ID], ca: false }, /digitalSignature/],
];

describe('readSvidSpiffeId', () => {
  it('reads the SPIFFE ID of a leaf that follows the X509-SVID profile', async () => {
    const { node } = await leaf(GOOD);
    expect(readSvidSpiffeId(node, { trustDomain: 'cluster.local' })).toMatchObject({ uri: ID, trustDomain: 'cluster.local', path: '/ns/shop/sa/web' });
    // No BasicConstraints is CA:false (RFC 5280 default) and extra DNS SANs do not count as URI SANs.
    expect(readSvidSpiffeId((await leaf({ uris: [ID], dns: ['web.shop'], keyUsage: KU.digitalSignature })).node).uri).toBe(ID);
  });

  it.each(REFUSED)('refuses a leaf with %s', async (_what, spec, rule) => {
    const { node } = await leaf(spec);
    let caught: unknown;
    try {
      readSvidSpiffeId(node);
    } catch (err) {
      caught = err;
    }
    expect(isMeshcaError(caught) && caught.code).toBe('BAD_CHAIN');
    expect((caught as Error).message).toMatch(rule);
  });

  it('refuses a leaf from another trust domain when one is expected', async () => {
    const { node } = await leaf({ ...GOOD, uris: ['spiffe://example.org/ns/shop/sa/web'] });
    expect(readSvidSpiffeId(node).trustDomain).toBe('example.org');
    expect(() => readSvidSpiffeId(node, { trustDomain: 'cluster.local' })).toThrow(/trust domain example\.org, not cluster\.local/);
  });
});

describe('readSigningCertificateId', () => {
  it("reads a CA certificate's trust-domain ID, and nothing when it carries no URI SAN", async () => {
    expect(readSigningCertificateId(new X509Certificate(Buffer.from(root.rawData)))?.uri).toBe('spiffe://cluster.local');
    const bare = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '03',
      name: 'CN=external root',
      keys: rootKeys,
      signingAlgorithm: ALG,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(KU.keyCertSign, true)],
    });
    expect(readSigningCertificateId(new X509Certificate(Buffer.from(bare.rawData)))).toBeUndefined();
  });

  it('refuses a certificate that is not a CA with keyCertSign', async () => {
    const notCa = (await leaf(GOOD)).node;
    const noKeyCertSign = (await leaf({ ...GOOD, ca: true })).node;
    expect(() => readSigningCertificateId(notCa)).toThrow(/must be a CA/);
    expect(() => readSigningCertificateId(noKeyCertSign)).toThrow(/keyCertSign/);
  });
});

describe('verifiers use the strict reader', () => {
  const mtls = () => createMtlsAuthenticator({ issuers: () => [new X509Certificate(Buffer.from(root.rawData))], trustDomain: 'cluster.local', clock: new FakeClock(NOW) });

  it('mTLS renewal accepts a good client SVID and refuses each one go-spiffe refuses', async () => {
    const good = await mtls().authenticate({ peerCertificates: [(await leaf(GOOD)).node] } as never);
    expect(good).toMatchObject({ ok: true, caller: { spiffeId: { uri: ID }, namespace: 'shop', serviceAccount: 'web' } });
    for (const [, spec, rule] of [...REFUSED, ['', { ...GOOD, uris: ['spiffe://example.org/ns/shop/sa/web'] }, /not cluster\.local/] as const]) {
      const outcome = await mtls().authenticate({ peerCertificates: [(await leaf(spec)).node] } as never);
      expect(outcome).toMatchObject({ ok: false, kind: 'refused', reason: expect.stringMatching(rule) });
    }
  });

  it("the agent refuses the CA's answer when the leaf is not a strict SVID of the root's trust domain", async () => {
    const privateKey = KeyObject.from(leafKeys.privateKey);
    const rootPem = root.toString('pem');
    expect(acceptIssuedChain([(await leaf(GOOD)).pem, rootPem], privateKey, NOW).spiffeId).toBe(ID);
    for (const spec of [{ ...GOOD, uris: [ID, `${ID}2`] }, { ...GOOD, ca: true }, { ...GOOD, uris: ['spiffe://example.org/ns/shop/sa/web'] }]) {
      const { pem } = await leaf(spec);
      expect(() => acceptIssuedChain([pem, rootPem], privateKey, NOW)).toThrow(/the CA's answer was not usable: certificate is not a valid X509-SVID/);
    }
  });

  it('the agent refuses a leaf whose trust domain has no bundle: no CA certificate in its chain names one', async () => {
    // Same name and key as the test root, so the leaf verifies against it, but no spiffe:// URI SAN.
    const bare = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '04',
      name: 'CN=test root',
      notBefore: new Date(NOW - 3600_000),
      notAfter: new Date(NOW + 86400_000),
      keys: rootKeys,
      signingAlgorithm: ALG,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(KU.keyCertSign | KU.cRLSign, true)],
    });
    const { pem } = await leaf(GOOD);
    expect(() => acceptIssuedChain([pem, bare.toString('pem')], KeyObject.from(leafKeys.privateKey), NOW)).toThrow(
      /the CA's answer was not usable: no CA certificate in the chain names a trust domain .*no trust bundle for the leaf/,
    );
  });
});
