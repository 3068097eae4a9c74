// Loads the key directory into a verified signing authority.

import { createLocalSigner, loadSigningAuthority, type SigningAuthority } from '../pki/index.ts';
import { readKeyDirectory } from './key_directory.ts';

export function loadAuthorityFromDirectory(dir: string, nowMs: number): SigningAuthority {
  const material = readKeyDirectory(dir);
  return loadSigningAuthority({
    chainPem: material.chainPem,
    rootsPem: material.rootsPem,
    signer: createLocalSigner(material.caKey),
    nowMs,
  });
}
