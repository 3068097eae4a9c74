// CSR parsing: proof of possession, supported keys by name, and strictness against bad input; and
// the workload CSR meshca's agent makes.

import { AsnConvert } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AlgorithmIdentifier, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { describe, expect, it } from 'vitest';
import { MeshcaError } from '../../src/errors/index.ts';
import { createCsrPem, decodeSinglePem, generateKeyPair, keyAlgorithmOf, parseCsrDer, parseCsrPem, signatureAlgorithmFor, toPem } from '../../src/pki/index.ts';
import { opensslCsr } from '../helpers/csr.ts';

function errorOf(fn: () => unknown): MeshcaError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MeshcaError);
    return err as MeshcaError;
  }
  throw new Error('expected an error');
}

describe('parseCsrPem', () => {
  it.each(['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096'] as const)('accepts %s and returns the same key asn1-schema reads', (spec) => {
    const { csrPem } = opensslCsr(spec);
    const csr = parseCsrPem(csrPem);
    const generic = AsnConvert.parse(decodeSinglePem(csrPem, ['CERTIFICATE REQUEST'], 'csr'), CertificationRequest);
    expect(Buffer.from(AsnConvert.serialize(generic.certificationRequestInfo.subjectPKInfo)).equals(csr.spkiDer)).toBe(true);
  });

  it.each([
    ['rsa-1024', /RSA key of 1024 bits is not supported; use 2048 to 4096 bits/],
    ['ec-p521', /ECDSA curve secp521r1 is not supported; use P-256 or P-384/],
    ['ed25519', /Ed25519 is not accepted/],
  ] as const)('refuses %s by name', (spec, message) => {
    const err = errorOf(() => parseCsrPem(opensslCsr(spec).csrPem));
    expect(err.message).toMatch(message);
    expect(['BAD_CSR', 'UNSUPPORTED_KEY']).toContain(err.code);
  });

  it('refuses a CSR signed with SHA-1', () => {
    const err = errorOf(() => parseCsrPem(opensslCsr('rsa-2048', { digest: 'sha1' }).csrPem));
    expect(err.message).toMatch(/sha1WithRSAEncryption is not accepted/);
  });

  it('refuses a CSR whose signature does not match (proof of possession)', () => {
    const der = decodeSinglePem(opensslCsr().csrPem, ['CERTIFICATE REQUEST'], 'csr');
    der[der.length - 5]! ^= 0x01;
    expect(errorOf(() => parseCsrDer(der)).message).toMatch(/signature does not verify|could not be checked/);
  });

  it('refuses a CSR whose subject was changed after signing', () => {
    const { csrPem } = opensslCsr('ec-p256', { subject: '/CN=aaaa' });
    const der = decodeSinglePem(csrPem, ['CERTIFICATE REQUEST'], 'csr');
    const at = der.indexOf(Buffer.from('aaaa'));
    der[at] = 'b'.charCodeAt(0);
    expect(errorOf(() => parseCsrDer(der)).code).toBe('BAD_CSR');
  });

  it.each([
    ['not PEM', 'hello', /not PEM/],
    ['a certificate instead of a CSR', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', /expected CERTIFICATE REQUEST/],
    ['two CSRs', opensslCsr().csrPem + opensslCsr().csrPem, /2 PEM blocks/],
    ['garbage DER', toPem(Buffer.from('0123456789'), 'CERTIFICATE REQUEST'), /not a valid PKCS#10/],
  ])('refuses %s', (_name, input, message) => {
    const err = errorOf(() => parseCsrPem(input));
    expect(err.code).toBe('BAD_CSR');
    expect(err.message).toMatch(message);
  });

  it('refuses trailing bytes after the DER structure', () => {
    const der = decodeSinglePem(opensslCsr().csrPem, ['CERTIFICATE REQUEST'], 'csr');
    expect(errorOf(() => parseCsrDer(Buffer.concat([der, Buffer.from([0])]))).message).toMatch(/trailing bytes/);
  });

  it('refuses a CSR over 16 KiB before parsing it', () => {
    expect(errorOf(() => parseCsrDer(new Uint8Array(17 * 1024))).message).toMatch(/at most 16384/);
  });
});

describe('createCsrPem (a workload CSR, encoded without an ASN.1 library)', () => {
  it.each(['ec-p256', 'ec-p384', 'rsa-2048'] as const)('for %s encodes what asn1-schema encodes, and the CA accepts it', (keyType) => {
    const { privateKey, publicKey } = generateKeyPair(keyType);
    const der = decodeSinglePem(createCsrPem(privateKey), ['CERTIFICATE REQUEST'], 'csr');
    // The same structure, built by asn1-schema: version 0, empty subject, the key, no attributes,
    // the key's signature algorithm (OIDs with multi-byte arcs; RSA with an explicit NULL), and
    // the signature as sent.
    const sent = AsnConvert.parse(der, CertificationRequest);
    const algorithm = signatureAlgorithmFor(keyAlgorithmOf(privateKey));
    const reference = new CertificationRequest({
      certificationRequestInfo: new CertificationRequestInfo({
        version: 0,
        subject: new Name([]),
        subjectPKInfo: AsnConvert.parse(publicKey.export({ format: 'der', type: 'spki' }), SubjectPublicKeyInfo),
        attributes: new Attributes(),
      }),
      signatureAlgorithm: new AlgorithmIdentifier({ algorithm: algorithm.oid, ...(algorithm.nullParams ? { parameters: null } : {}) }),
      signature: sent.signature,
    });
    expect(Buffer.from(AsnConvert.serialize(reference)).equals(der)).toBe(true);
    const parsed = parseCsrDer(der);
    expect(parsed.spkiDer.equals(publicKey.export({ format: 'der', type: 'spki' }))).toBe(true);
  });
});
