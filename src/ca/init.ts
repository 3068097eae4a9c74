// `ca init`: makes a root and an intermediate (or only an intermediate under an operator's root)
// and writes them in the cacerts layout. Refuses to replace an existing CA unless forced.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MeshcaError } from '../errors/index.ts';
import {
  createIntermediateCa,
  createLocalSigner,
  createRootCa,
  acceptOperatorRoot,
  keyIdOf,
  LOCAL_KEY_CUSTODY,
  readPrivateKeyFile,
  toPem,
  type KeyCustody,
  type KeyType,
} from '../pki/index.ts';
import { validateTrustDomain } from '../spiffe/index.ts';
import { inspectKeyDirectory, writeCacertsFiles } from './key_directory.ts';

export interface InitRequest {
  keysDir: string;
  trustDomain: string;
  organization: string;
  keyType: KeyType;
  rootTtlMs: number;
  caTtlMs: number;
  nowMs: number;
  force: boolean;
  /** Plug in an existing root: only the intermediate is made. */
  existingRoot?: { certPath: string; keyPath: string };
  /**
   * Called with --force on a directory that holds a CA, once the new CA is made and just before
   * its files are written: forgets whatever else describes the old CA (the rotation slots), so
   * every reader sees the new CA and only it.
   */
  replacing?: () => void;
  /** Where the intermediate's key is made: memory (ca-key.pem) or a token (--signer, ca-key.pkcs11). */
  custody?: KeyCustody;
}

export interface InitResult {
  keysDir: string;
  files: string[];
  rootKeyId: string;
  caKeyId: string;
  rootNotAfter: string;
  caNotAfter: string;
  madeRoot: boolean;
}

function loadExistingRoot(paths: { certPath: string; keyPath: string }, expect: { nowMs: number; trustDomain: string }) {
  const key = readPrivateKeyFile(paths.keyPath);
  const root = { certPem: readFileSync(paths.certPath, 'utf8'), key, certSource: `--external-root-cert ${paths.certPath}`, keySource: `--external-root-key ${paths.keyPath}` };
  return { cert: acceptOperatorRoot(root, expect), key };
}

export async function initCa(req: InitRequest): Promise<InitResult> {
  validateTrustDomain(req.trustDomain);
  const state = inspectKeyDirectory(req.keysDir);
  if (state !== 'empty' && !req.force) {
    throw new MeshcaError(
      'KEYS_EXIST',
      `key directory ${req.keysDir} already holds a CA; to change its root without breaking workloads rotate it ` +
        `("meshca root prepare", then "root activate", then "root retire"), or pass --force to replace it (the old keys and rotation slots are lost)`,
    );
  }
  const base = { trustDomain: req.trustDomain, organization: req.organization, keyType: req.keyType, nowMs: req.nowMs };

  let rootCert: X509Certificate;
  let rootKey = undefined as ReturnType<typeof createPrivateKey> | undefined;
  let madeRoot = false;
  if (req.existingRoot) {
    const existing = loadExistingRoot(req.existingRoot, { nowMs: req.nowMs, trustDomain: req.trustDomain });
    rootCert = existing.cert;
    rootKey = existing.key;
  } else {
    const made = await createRootCa({ ...base, ttlMs: req.rootTtlMs });
    rootCert = new X509Certificate(made.certificateDer);
    rootKey = made.privateKey;
    madeRoot = true;
  }
  const intermediate = await createIntermediateCa({
    ...base,
    ttlMs: req.caTtlMs,
    rootCertificateDer: rootCert.raw,
    rootSigner: createLocalSigner(rootKey),
    rootNotAfterMs: Date.parse(rootCert.validTo),
    custody: req.custody ?? LOCAL_KEY_CUSTODY,
  });
  const caCert = new X509Certificate(intermediate.certificateDer);
  const rootPem = toPem(rootCert.raw, 'CERTIFICATE');
  if (state !== 'empty') req.replacing?.();
  const files = writeCacertsFiles(req.keysDir, {
    bundlePem: rootPem,
    chainPem: toPem(caCert.raw, 'CERTIFICATE'),
    rootPem,
    caKey: intermediate.privateKey,
    // An operator's own root key stays where the operator keeps it.
    ...(madeRoot ? { rootKey } : {}),
  });
  return {
    keysDir: req.keysDir,
    files,
    rootKeyId: keyIdOf(rootCert.raw),
    caKeyId: keyIdOf(caCert.raw),
    rootNotAfter: new Date(rootCert.validTo).toISOString(),
    caNotAfter: new Date(caCert.validTo).toISOString(),
    madeRoot,
  };
}
