// Makes CA certificates: a self-signed root and intermediates under it. A root's key is generated
// in this process; an intermediate's where its key custody keeps keys (memory or a token). This
// module never writes or logs keys.

import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import { makeIssuerTemplate, makeSelfIssuerTemplate, signCertificate } from './certificate_builder.ts';
import { generateKeyPair } from './key_types.ts';
import type { KeyType } from './settings/index.ts';
import { caExtensions, distinguishedName } from './profiles.ts';
import { randomSerial, type SerialSource } from './serial.ts';
import { LOCAL_KEY_CUSTODY, type CaPrivateKey, type KeyCustody } from './key_custody.ts';
import { createLocalSigner, type Signer } from './signer.ts';

/** CA certificates are backdated a little too, so freshly made ones verify on skewed clocks. */
const CA_BACKDATE_MS = 5 * 60_000;

export interface CaCertificateRequest {
  trustDomain: string;
  organization: string;
  keyType: KeyType;
  ttlMs: number;
  nowMs: number;
  serial?: SerialSource;
}

export interface MadeCa {
  certificateDer: Buffer;
  privateKey: KeyObject;
}

function spkiOf(key: KeyObject): Buffer {
  return (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'der', type: 'spki' });
}

export async function createRootCa(req: CaCertificateRequest): Promise<MadeCa> {
  const { privateKey } = generateKeyPair(req.keyType);
  const signer = createLocalSigner(privateKey);
  const name = distinguishedName(`meshca root CA ${new Date(req.nowMs).toISOString().slice(0, 10)}`, req.organization);
  const spki = spkiOf(privateKey);
  const certificateDer = await signCertificate(makeSelfIssuerTemplate(name, spki, signer), {
    serial: (req.serial ?? randomSerial)(),
    notBeforeMs: req.nowMs - CA_BACKDATE_MS,
    notAfterMs: req.nowMs + req.ttlMs,
    subjectDer: name,
    spkiDer: spki,
    extensions: caExtensions(`spiffe://${req.trustDomain}`),
  });
  return { certificateDer, privateKey };
}

export interface IntermediateRequest extends CaCertificateRequest {
  rootCertificateDer: Uint8Array;
  rootSigner: Signer;
  /** The intermediate never outlives its root. */
  rootNotAfterMs: number;
  /** Where the intermediate's key is made (default: memory). */
  custody?: KeyCustody;
}

export interface MadeIntermediate {
  certificateDer: Buffer;
  /** A KeyObject, or the reference to a key made inside a token. */
  privateKey: CaPrivateKey;
}

/** Without a custody the key is made in memory, and is a KeyObject. */
export async function createIntermediateCa(req: IntermediateRequest & { custody?: undefined }): Promise<MadeCa>;
export async function createIntermediateCa(req: IntermediateRequest): Promise<MadeIntermediate>;
export async function createIntermediateCa(req: IntermediateRequest): Promise<MadeIntermediate> {
  const { key: privateKey, publicKey } = await (req.custody ?? LOCAL_KEY_CUSTODY).generate(req.keyType);
  const name = distinguishedName(`meshca intermediate CA ${new Date(req.nowMs).toISOString().slice(0, 10)}`, req.organization);
  const certificateDer = await signCertificate(makeIssuerTemplate(req.rootCertificateDer, req.rootSigner), {
    serial: (req.serial ?? randomSerial)(),
    notBeforeMs: req.nowMs - CA_BACKDATE_MS,
    notAfterMs: Math.min(req.nowMs + req.ttlMs, req.rootNotAfterMs),
    subjectDer: name,
    spkiDer: spkiOf(publicKey),
    extensions: caExtensions(`spiffe://${req.trustDomain}`, 0),
  });
  return { certificateDer, privateKey };
}
