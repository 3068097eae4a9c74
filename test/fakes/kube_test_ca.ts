// A throwaway CA for test servers that must speak real TLS (the fake Kubernetes API server): a
// self-signed ECDSA root and a serving certificate for 127.0.0.1/localhost. Test use only.

import { webcrypto } from 'node:crypto';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
type CryptoKey = webcrypto.CryptoKey;
import * as x509 from '@peculiar/x509';
import { toPem } from '../../src/pki/index.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface TestServingMaterial {
  /** PEM of the test root; clients trust this. */
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

async function keyPemOf(key: CryptoKey): Promise<string> {
  return toPem(new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', key)), 'PRIVATE KEY');
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(12))).toString('hex').replace(/^[89a-f]/, '1');
}

/** Makes a root and a serving certificate for the given DNS names and IP addresses. */
export async function makeTestServingMaterial(
  names: { dns?: readonly string[]; ips?: readonly string[]; commonName?: string } = {},
): Promise<TestServingMaterial> {
  const now = Date.now();
  const notBefore = new Date(now - DAY_MS);
  const notAfter = new Date(now + DAY_MS);
  const caKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=meshca test kube CA',
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const leafKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const sans = [
    ...(names.dns ?? ['localhost']).map((value) => ({ type: 'dns' as const, value })),
    ...(names.ips ?? ['127.0.0.1']).map((value) => ({ type: 'ip' as const, value })),
  ];
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names.commonName ?? 'kube-apiserver'}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    signingKey: caKeys.privateKey,
    publicKey: leafKeys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(sans),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  return { caPem: ca.toString('pem'), certPem: leaf.toString('pem'), keyPem: await keyPemOf(leafKeys.privateKey) };
}
