// The CA's key directory: Istio's cacerts layout (root-cert.pem, ca-cert.pem, ca-key.pem,
// cert-chain.pem, plus root-key.pem when meshca made the root) or the kubernetes.io/tls layout
// (tls.crt, tls.key, ca.crt). Reads refuse keys others can read; writes are atomic and 0600. When
// the intermediate's key lives in a token, ca-key.pkcs11 (its PKCS#11 URI, no secret) stands in
// for ca-key.pem.

import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { MeshcaError } from '../errors/index.ts';
import {
  assertKeyTreeProtected,
  decodeCertificates,
  formatKeyReference,
  isKeyReference,
  parseKeyReference,
  PUBLIC_FILE_MODE,
  readPrivateKeyFile,
  toPem,
  writeFileAtomic,
  writePrivateKeyFile,
  type CaPrivateKey,
} from '../pki/index.ts';

export const CACERTS_FILES = {
  rootCert: 'root-cert.pem',
  caCert: 'ca-cert.pem',
  caKey: 'ca-key.pem',
  /** Instead of ca-key.pem when the key is in a token (--signer pkcs11:…). */
  caKeyRef: 'ca-key.pkcs11',
  certChain: 'cert-chain.pem',
  rootKey: 'root-key.pem',
} as const;

export const TLS_FILES = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' } as const;

export interface CaMaterial {
  readonly layout: 'cacerts' | 'kubernetes-tls';
  /** Trust bundle: every root, PEM. */
  readonly rootsPem: string;
  /** Issuing CA certificate then the rest of its chain (may end with the root). */
  readonly chainPem: string;
  readonly caKey: CaPrivateKey;
  /** Present only when this directory holds the root's key (meshca made the root). */
  readonly rootKey?: KeyObject;
}

export type KeyDirectoryState = 'empty' | 'cacerts' | 'kubernetes-tls' | 'partial';

/** Files that are ours to look at; anything else (READMEs, dotfiles) does not make a CA. */
function caFilesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const ours = new Set<string>([...Object.values(CACERTS_FILES), ...Object.values(TLS_FILES)]);
  return readdirSync(dir).filter((f) => ours.has(f));
}

export function inspectKeyDirectory(dir: string): KeyDirectoryState {
  const files = new Set(caFilesIn(dir));
  if (files.size === 0) return 'empty';
  if (files.has(CACERTS_FILES.caCert) && (files.has(CACERTS_FILES.caKey) || files.has(CACERTS_FILES.caKeyRef)) && files.has(CACERTS_FILES.rootCert)) return 'cacerts';
  if (files.has(TLS_FILES.cert) && files.has(TLS_FILES.key) && files.has(TLS_FILES.ca)) return 'kubernetes-tls';
  return 'partial';
}

function readText(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8');
}

/** Reads the CA material; the caller verifies it (loadSigningAuthority) before use. */
export function readKeyDirectory(dir: string): CaMaterial {
  const state = inspectKeyDirectory(dir);
  if (state !== 'empty') assertKeyTreeProtected(dir);
  switch (state) {
    case 'empty':
      throw new MeshcaError('KEYS_MISSING', `key directory ${dir} holds no CA; run "meshca ca init --keys ${dir}" or copy your CA files there`);
    case 'partial':
      throw new MeshcaError(
        'KEYS_MISSING',
        `key directory ${dir} is incomplete (found ${caFilesIn(dir).join(', ')}); it needs ${CACERTS_FILES.rootCert}, ` +
          `${CACERTS_FILES.caCert}, ${CACERTS_FILES.caKey} (and ${CACERTS_FILES.certChain}), or ${TLS_FILES.cert}, ${TLS_FILES.key}, ${TLS_FILES.ca}`,
      );
    case 'cacerts': {
      const chainFile = existsSync(join(dir, CACERTS_FILES.certChain)) ? CACERTS_FILES.certChain : CACERTS_FILES.caCert;
      const caCert = readText(dir, CACERTS_FILES.caCert);
      const chain = readText(dir, chainFile);
      const rootKeyPath = join(dir, CACERTS_FILES.rootKey);
      return {
        layout: 'cacerts',
        rootsPem: readText(dir, CACERTS_FILES.rootCert),
        // cert-chain.pem starts with ca-cert.pem in Istio's layout; tolerate one that does not.
        chainPem: chain.includes(caCert.trim()) ? chain : caCert + chain,
        caKey: readCaKeyFile(dir, CACERTS_FILES.caKey, CACERTS_FILES.caKeyRef),
        ...(existsSync(rootKeyPath) ? { rootKey: readPrivateKeyFile(rootKeyPath) } : {}),
      };
    }
    case 'kubernetes-tls':
      return {
        layout: 'kubernetes-tls',
        rootsPem: readText(dir, TLS_FILES.ca),
        chainPem: readText(dir, TLS_FILES.cert),
        caKey: readPrivateKeyFile(join(dir, TLS_FILES.key)),
      };
  }
}

/** The key file, or the token reference that stands in for it (a directory holding both is refused). */
export function readCaKeyFile(dir: string, keyFile: string, refFile: string): CaPrivateKey {
  const keyPath = join(dir, keyFile);
  const refPath = join(dir, refFile);
  const hasRef = existsSync(refPath);
  if (hasRef && existsSync(keyPath)) throw new MeshcaError('BAD_KEY_FILE', `${dir} holds both ${keyFile} and ${refFile}; keep the one that names the intermediate's key`);
  return hasRef ? parseKeyReference(readFileSync(refPath, 'utf8'), refPath) : readPrivateKeyFile(keyPath);
}

/** Writes a key as its file, or a token's key as its reference file, removing the other kind. */
export function writeCaKeyFile(dir: string, keyFile: string, refFile: string, key: CaPrivateKey): string {
  const keyPath = join(dir, keyFile);
  const refPath = join(dir, refFile);
  if (isKeyReference(key)) {
    writeFileAtomic(refPath, formatKeyReference(key), PUBLIC_FILE_MODE);
    if (existsSync(keyPath)) unlinkSync(keyPath);
    return refPath;
  }
  writePrivateKeyFile(keyPath, key);
  if (existsSync(refPath)) unlinkSync(refPath);
  return keyPath;
}

export interface CacertsFiles {
  /** root-cert.pem: the whole trust bundle (every trusted root). */
  readonly bundlePem: string;
  /** The issuing CA's chain, its own certificate first, without the root. */
  readonly chainPem: string;
  /** The root the chain ends at: cert-chain.pem is the chain then this root. */
  readonly rootPem: string;
  readonly caKey: CaPrivateKey;
  /** root-key.pem when meshca holds the root's key; without it, a stale root-key.pem is removed. */
  readonly rootKey?: KeyObject;
}

/**
 * The one writer of the cacerts layout (and of the kubernetes.io/tls files when the directory
 * already has them). Keys first, 0600; certificates after; ca-cert.pem last, so an interrupted
 * write never leaves a directory that reads as a complete CA. Each file is atomic.
 */
export function writeCacertsFiles(dir: string, files: CacertsFiles): string[] {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const written: string[] = [];
  const at = (name: string) => join(dir, name);
  const putKey = (name: string, key: CaPrivateKey) => {
    if (isKeyReference(key)) throw new MeshcaError('INTERNAL', `${name} cannot hold a key kept in a token`);
    writePrivateKeyFile(at(name), key);
    written.push(at(name));
  };
  const putCert = (name: string, pem: string) => {
    writeFileAtomic(at(name), pem, PUBLIC_FILE_MODE);
    written.push(at(name));
  };
  const caCertPem = toPem(decodeCertificates(files.chainPem, 'the issuing CA chain')[0]!, 'CERTIFICATE');
  if (isKeyReference(files.caKey) && existsSync(at(TLS_FILES.cert))) {
    throw new MeshcaError('BAD_CONFIG', `${dir} uses the kubernetes.io/tls layout, whose tls.key cannot name a key kept in a token; use the cacerts layout with --signer`);
  }
  written.push(writeCaKeyFile(dir, CACERTS_FILES.caKey, CACERTS_FILES.caKeyRef, files.caKey));
  if (files.rootKey) putKey(CACERTS_FILES.rootKey, files.rootKey);
  else if (existsSync(at(CACERTS_FILES.rootKey))) unlinkSync(at(CACERTS_FILES.rootKey));
  putCert(CACERTS_FILES.rootCert, files.bundlePem);
  putCert(CACERTS_FILES.certChain, files.chainPem + files.rootPem);
  putCert(CACERTS_FILES.caCert, caCertPem);
  if (existsSync(at(TLS_FILES.cert))) {
    putKey(TLS_FILES.key, files.caKey);
    putCert(TLS_FILES.cert, files.chainPem);
    putCert(TLS_FILES.ca, files.bundlePem);
  }
  return written;
}
