// Makes the PKCS#10 certificate signing request (RFC 2986) for meshca's own intermediate, for a
// root kept elsewhere (a workload's CSR: workload_csr.ts). Never writes or logs the key.

import { AsnConvert } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AlgorithmIdentifier, Attribute, Extension, Extensions, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { caExtensions, distinguishedName } from './profiles.ts';
import type { Signer } from './signer.ts';
import { toPem } from './pem.ts';

/** PKCS#9 extensionRequest (RFC 2985 §5.4.2): the extensions a CSR asks its issuer to include. */
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/**
 * The CSR for meshca's own intermediate, for a root kept elsewhere (`meshca ca csr`): named like the
 * intermediates meshca makes, asking for CA:true with pathLen 0, keyCertSign and the trust domain's
 * URI SAN. Signed by the key's custody (memory or a token); the root's holder decides what to grant,
 * and `ca install` checks what came back.
 */
export async function createIntermediateCsrPem(req: { signer: Signer; trustDomain: string; organization: string; nowMs: number }): Promise<string> {
  const spkiDer = req.signer.publicKey.export({ format: 'der', type: 'spki' });
  const extensions = new Extensions(caExtensions(`spiffe://${req.trustDomain}`, 0).map((der) => AsnConvert.parse(der, Extension)));
  const info = new CertificationRequestInfo({
    version: 0,
    subject: AsnConvert.parse(distinguishedName(`meshca intermediate CA ${new Date(req.nowMs).toISOString().slice(0, 10)}`, req.organization), Name),
    subjectPKInfo: AsnConvert.parse(spkiDer, SubjectPublicKeyInfo),
    attributes: new Attributes([new Attribute({ type: OID_EXTENSION_REQUEST, values: [AsnConvert.serialize(extensions)] })]),
  });
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  const signature = await req.signer.sign(infoDer);
  const algorithm = req.signer.algorithm;
  const request = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: algorithm.oid, ...(algorithm.nullParams ? { parameters: null } : {}) }),
    signature: new Uint8Array(signature).buffer,
  });
  return toPem(Buffer.from(AsnConvert.serialize(request)), 'CERTIFICATE REQUEST');
}
