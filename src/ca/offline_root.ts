// An intermediate under a root kept offline: `ca csr` makes the key (in memory, written to the key
// store's pending/ directory, or in a token) and its CSR; the root's holder signs it elsewhere; `ca
// install` checks what came back (acceptIssuedIntermediate) and writes the CA through the one
// cacerts writer. The root's key never comes near the CA host.

import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MeshcaError } from '../errors/index.ts';
import { acceptIssuedIntermediate, createIntermediateCsrPem, isKeyReference, keyIdOf, PUBLIC_FILE_MODE, writeFileAtomic, type CaPrivateKey, type KeyCustody, type KeyType } from '../pki/index.ts';
import { validateTrustDomain } from '../spiffe/index.ts';
import { CACERTS_FILES, inspectKeyDirectory, readCaKeyFile, writeCaKeyFile, writeCacertsFiles } from './key_directory.ts';

/** Beside the CA files: the key and request waiting for the offline root's signature. */
export const PENDING_DIR = 'pending';
const REQUEST_CSR = 'intermediate.csr';
const REQUEST_FACTS = 'request.json';

export interface IntermediateRequest {
  readonly keysDir: string;
  readonly custody: KeyCustody;
  readonly keyType: KeyType;
  readonly trustDomain: string;
  readonly organization: string;
  readonly nowMs: number;
}

/** Makes the key and its CSR; a pending request made earlier is replaced (its key was never used). */
export async function makeIntermediateRequest(req: IntermediateRequest): Promise<{ csrPem: string; pendingDir: string }> {
  validateTrustDomain(req.trustDomain);
  const pendingDir = join(req.keysDir, PENDING_DIR);
  const { key } = await req.custody.generate(req.keyType);
  const csrPem = await createIntermediateCsrPem({ signer: req.custody.signerFor(key), trustDomain: req.trustDomain, organization: req.organization, nowMs: req.nowMs });
  mkdirSync(pendingDir, { recursive: true, mode: 0o700 });
  writeCaKeyFile(pendingDir, CACERTS_FILES.caKey, CACERTS_FILES.caKeyRef, key);
  writeFileAtomic(join(pendingDir, REQUEST_CSR), csrPem, PUBLIC_FILE_MODE);
  writeFileAtomic(join(pendingDir, REQUEST_FACTS), `${JSON.stringify({ trustDomain: req.trustDomain, requestedAtMs: req.nowMs })}\n`, PUBLIC_FILE_MODE);
  return { csrPem, pendingDir };
}

export interface PendingRequest {
  readonly key: CaPrivateKey;
  readonly trustDomain: string;
}

export function readPendingRequest(keysDir: string): PendingRequest {
  const pendingDir = join(keysDir, PENDING_DIR);
  if (!existsSync(join(pendingDir, REQUEST_FACTS))) {
    throw new MeshcaError('KEYS_MISSING', `no pending intermediate request in ${keysDir}; run "meshca ca csr --keys ${keysDir}" first and have its CSR signed by the root`);
  }
  const facts = JSON.parse(readFileSync(join(pendingDir, REQUEST_FACTS), 'utf8')) as { trustDomain: string };
  return { key: readCaKeyFile(pendingDir, CACERTS_FILES.caKey, CACERTS_FILES.caKeyRef), trustDomain: facts.trustDomain };
}

export interface InstallRequest {
  readonly keysDir: string;
  readonly custody: KeyCustody;
  readonly certPem: string;
  readonly certSource: string;
  readonly chainPem: string;
  readonly chainSource: string;
  readonly maxLeafTtlMs: number;
  readonly nowMs: number;
}

export interface InstallResult {
  readonly caKeyId: string;
  readonly rootKeyId: string;
  readonly caNotAfter: string;
  readonly rootNotAfter: string;
  readonly keyInToken: boolean;
}

function publicKeyOf(key: CaPrivateKey, custody: KeyCustody): KeyObject {
  return isKeyReference(key) ? custody.signerFor(key).publicKey : createPublicKey(key);
}

/** Checks the signed intermediate against the pending request and installs it in an empty key store. */
export function installIntermediate(req: InstallRequest): InstallResult {
  if (inspectKeyDirectory(req.keysDir) !== 'empty') {
    throw new MeshcaError(
      'KEYS_EXIST',
      `key directory ${req.keysDir} already holds a CA; to move it under the offline root, rotate: "meshca root prepare --cert … --chain …" (see docs/rotation.md)`,
    );
  }
  const pending = readPendingRequest(req.keysDir);
  const accepted = acceptIssuedIntermediate({
    certPem: req.certPem,
    certSource: req.certSource,
    chainPem: req.chainPem,
    chainSource: req.chainSource,
    publicKey: publicKeyOf(pending.key, req.custody),
    trustDomain: pending.trustDomain,
    nowMs: req.nowMs,
    maxLeafTtlMs: req.maxLeafTtlMs,
  });
  // The root's key stays with its holder: no root-key.pem, so meshca never rotates intermediates on its own.
  writeCacertsFiles(req.keysDir, { bundlePem: accepted.rootPem, chainPem: accepted.chainPem, rootPem: accepted.rootPem, caKey: pending.key });
  rmSync(join(req.keysDir, PENDING_DIR), { recursive: true, force: true });
  return {
    caKeyId: keyIdOf(accepted.certificate.raw),
    rootKeyId: keyIdOf(accepted.root.raw),
    caNotAfter: new Date(accepted.certificate.validTo).toISOString(),
    rootNotAfter: new Date(accepted.root.validTo).toISOString(),
    keyInToken: isKeyReference(pending.key),
  };
}
