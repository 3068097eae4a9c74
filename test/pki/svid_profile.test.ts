// The X509-SVID profile, checked field by field with @peculiar/x509 and node:crypto, and by OpenSSL.

import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn1 from '@peculiar/asn1-x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeTbsCertificate, issueSvid, leafValidity, parseCsrPem, certificateFields, readIssuedFields, createRootCa } from '../../src/pki/index.ts';
import { opensslCsr, opensslVerify } from '../helpers/csr.ts';
import { makeTestAuthority, type TestAuthority } from '../helpers/test_ca.ts';

const ID = 'spiffe://cluster.local/ns/shop/sa/web';
let ca: TestAuthority;
beforeAll(async () => {
  ca = await makeTestAuthority();
});

async function issue(keySpec: Parameters<typeof opensslCsr>[0] = 'ec-p256', ttlMs = 3600_000, nowMs = Date.now()) {
  const { csrPem, keyPem } = opensslCsr(keySpec, { subject: '/CN=evil', san: 'URI:spiffe://evil/x,DNS:evil.example' });
  const csr = parseCsrPem(csrPem);
  const cert = await issueSvid(ca.authority, ID, { spkiDer: csr.spkiDer, keyAlgorithm: csr.keyAlgorithm, ttlMs, nowMs });
  return { cert, keyPem, x: new x509.X509Certificate(cert.der), node: new X509Certificate(cert.der) };
}

describe('X509-SVID leaf profile', () => {
  it('verifies with openssl against the root through the intermediate, for client and server use', async () => {
    const { cert } = await issue();
    expect(opensslVerify(ca.rootPem, ca.intermediatePem, cert.pem)).toContain('OK');
    expect(opensslVerify(ca.rootPem, ca.intermediatePem, cert.pem, ['-purpose', 'sslclient'])).toContain('OK');
    expect(opensslVerify(ca.rootPem, ca.intermediatePem, cert.pem, ['-purpose', 'sslserver'])).toContain('OK');
  });

  it('carries exactly one URI SAN, the SPIFFE ID, critical, with an empty subject', async () => {
    const { x, node } = await issue();
    expect(x.subject).toBe('');
    const san = x.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.critical).toBe(true);
    expect(san.names.toJSON()).toEqual([{ type: 'url', value: ID }]);
    expect(node.subjectAltName).toBe(`URI:${ID}`);
  });

  it('is not a CA and may only sign (keyUsage critical digitalSignature), for serverAuth and clientAuth', async () => {
    const { x } = await issue();
    const bc = x.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.critical).toBe(true);
    expect(bc.ca).toBe(false);
    const ku = x.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    const eku = x.getExtension(x509.ExtendedKeyUsageExtension)!;
    expect(eku.usages).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  });

  it('adds keyEncipherment for RSA keys only', async () => {
    const { x } = await issue('rsa-2048');
    expect(x.getExtension(x509.KeyUsagesExtension)!.usages).toBe(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
  });

  it('has an SKI of its own key and an AKI equal to the issuer SKI', async () => {
    const { x, node } = await issue();
    const spki = node.publicKey.export({ format: 'der', type: 'spki' });
    const keyBits = AsnConvert.parse(spki, asn1.SubjectPublicKeyInfo).subjectPublicKey;
    const expectedSki = createHash('sha1').update(new Uint8Array(keyBits)).digest('hex');
    expect(x.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId).toBe(expectedSki);
    const issuerSki = new x509.X509Certificate(ca.intermediate.raw).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    expect(x.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(issuerSki);
  });

  it('has a random positive serial of 64 to 160 bits, different every time', async () => {
    const serials = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const { node } = await issue();
      const hex = node.serialNumber;
      expect(hex.length / 2).toBeGreaterThanOrEqual(8);
      expect(hex.length / 2).toBeLessThanOrEqual(20);
      expect(parseInt(hex.slice(0, 2), 16) & 0x80).toBe(0);
      serials.add(hex);
    }
    expect(serials.size).toBe(20);
  });

  it('is backdated 60 s and lives exactly the TTL', async () => {
    const now = Math.floor(Date.now() / 1000) * 1000;
    const { node } = await issue('ec-p256', 7200_000, now);
    expect(Date.parse(node.validFrom)).toBe(now - 60_000);
    expect(Date.parse(node.validTo)).toBe(now + 7200_000);
  });

  it('never outlives its issuer', async () => {
    const now = Date.now();
    const short = await makeTestAuthority({ caTtlMs: 1800_000, nowMs: now });
    const { csrPem } = opensslCsr();
    const csr = parseCsrPem(csrPem);
    const cert = await issueSvid(short.authority, ID, { spkiDer: csr.spkiDer, keyAlgorithm: csr.keyAlgorithm, ttlMs: 3600_000, nowMs: now });
    expect(Date.parse(new X509Certificate(cert.der).validTo)).toBeLessThanOrEqual(Date.parse(short.intermediate.validTo));
    expect(() => leafValidity(Date.parse(short.intermediate.validTo) + 1000, 3600_000, Date.parse(short.intermediate.validTo))).toThrow(/expired/);
  });

  it('encodes the TBS exactly as asn1-schema would (the fast path matches the generic encoder)', async () => {
    const { csrPem } = opensslCsr();
    const csr = parseCsrPem(csrPem);
    const now = Date.now() + 86400_000;
    const serial = Uint8Array.from([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]);
    const cert = await issueSvid(ca.authority, ID, { spkiDer: csr.spkiDer, keyAlgorithm: csr.keyAlgorithm, ttlMs: 3600_000, nowMs: now, serial: () => serial });
    const parsed = AsnConvert.parse(cert.der, asn1.Certificate);
    // Re-encoding the parsed TBS with asn1-schema must give the same bytes we signed.
    const reencoded = Buffer.from(AsnConvert.serialize(parsed.tbsCertificate));
    const tbsSigned = Buffer.from(parsed.tbsCertificateRaw!);
    expect(reencoded.equals(tbsSigned)).toBe(true);
    // And encodeTbsCertificate is deterministic for the same parts.
    const parts = { serial, notBeforeMs: now - 60_000, notAfterMs: now + 3600_000, subjectDer: certificateFields(cert.der).subjectDer, spkiDer: csr.spkiDer, extensions: [] as Buffer[] };
    expect(encodeTbsCertificate(ca.authority.template, parts).equals(encodeTbsCertificate(ca.authority.template, parts))).toBe(true);
    expect(parsed.tbsCertificate.validity.notAfter.generalTime).toBeUndefined(); // 2030: UTCTime
  });

  it('uses GeneralizedTime from 2050 on, as RFC 5280 requires', async () => {
    const now = Date.parse('2055-06-01T00:00:00Z');
    const far = await makeTestAuthority({ nowMs: now });
    const csr = parseCsrPem(opensslCsr().csrPem);
    const cert = await issueSvid(far.authority, ID, { spkiDer: csr.spkiDer, keyAlgorithm: csr.keyAlgorithm, ttlMs: 3600_000, nowMs: now });
    const parsed = AsnConvert.parse(cert.der, asn1.Certificate);
    expect(parsed.tbsCertificate.validity.notAfter.generalTime?.toISOString()).toBe('2055-06-01T01:00:00.000Z');
  });

  it('the leaf key is the CSR key', async () => {
    const { node, keyPem } = await issue();
    expect(node.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
  });
});

describe('CA certificates', () => {
  it('root: self-signed CA with keyCertSign + cRLSign (critical) and the trust-domain URI SAN', () => {
    const r = new x509.X509Certificate(ca.root.raw);
    expect(r.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: true, critical: true });
    const ku = r.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(r.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON()).toEqual([{ type: 'url', value: 'spiffe://cluster.local' }]);
    expect(ca.root.checkIssued(ca.root)).toBe(true);
  });

  it('intermediate: signed by the root, pathLen 0, trust-domain URI SAN; openssl verifies it', () => {
    const i = new x509.X509Certificate(ca.intermediate.raw);
    expect(i.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: true, pathLength: 0, critical: true });
    expect(i.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON()).toEqual([{ type: 'url', value: 'spiffe://cluster.local' }]);
    expect(opensslVerify(ca.rootPem, '', ca.intermediatePem)).toContain('OK');
  });

  it.each(['ec-p384', 'rsa-2048'] as const)('makes %s CAs that issue verifiable leaves', async (keyType) => {
    const other = await makeTestAuthority({ keyType });
    const csr = parseCsrPem(opensslCsr().csrPem);
    const cert = await issueSvid(other.authority, ID, { spkiDer: csr.spkiDer, keyAlgorithm: csr.keyAlgorithm, ttlMs: 3600_000, nowMs: Date.now() });
    expect(opensslVerify(other.rootPem, other.intermediatePem, cert.pem)).toContain('OK');
  });
});

describe('the issuer final check reads fields from the DER it built', () => {
  it('reads the issuer, key and validity exactly as OpenSSL parses them', async () => {
    const { cert, node } = await issue();
    const fields = readIssuedFields(cert.der);
    expect(fields.notBeforeMs).toBe(Date.parse(node.validFrom));
    expect(fields.notAfterMs).toBe(Date.parse(node.validTo));
    expect(fields.notAfterMs).toBe(cert.notAfterMs);
    expect(fields.spkiDer.equals(node.publicKey.export({ format: 'der', type: 'spki' }))).toBe(true);
    expect(fields.issuerDer.equals(certificateFields(ca.authority.certificate.raw).subjectDer)).toBe(true);
    expect(fields.extensionsDer.some((e) => e.equals(ca.authority.template.authorityKeyIdentifierDer))).toBe(true);
  });

  it('reads a GeneralizedTime (2050 and later) as OpenSSL does', async () => {
    const nowMs = Date.UTC(2026, 0, 1);
    const root = await createRootCa({ trustDomain: 'cluster.local', organization: 'test', keyType: 'ec-p256', nowMs, ttlMs: 40 * 365 * 86400e3 });
    const node = new X509Certificate(root.certificateDer);
    const fields = readIssuedFields(root.certificateDer);
    expect(new Date(fields.notAfterMs).getUTCFullYear()).toBeGreaterThanOrEqual(2050);
    expect(fields.notAfterMs).toBe(Date.parse(node.validTo));
    expect(fields.notBeforeMs).toBe(Date.parse(node.validFrom));
  });

  it('refuses DER with trailing bytes', async () => {
    const { cert } = await issue();
    expect(() => readIssuedFields(Buffer.concat([cert.der, Buffer.of(0)]))).toThrow(/trailing/);
  });
});
