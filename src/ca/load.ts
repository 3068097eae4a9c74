// Loads the key directory into a verified signing authority.

import { LOCAL_KEY_CUSTODY, loadSigningAuthority, type KeyCustody, type SigningAuthority } from '../pki/index.ts';
import { readKeyDirectory } from './key_directory.ts';

export function loadAuthorityFromDirectory(dir: string, nowMs: number, custody: KeyCustody = LOCAL_KEY_CUSTODY): SigningAuthority {
  const material = readKeyDirectory(dir);
  return loadSigningAuthority({
    chainPem: material.chainPem,
    rootsPem: material.rootsPem,
    signer: custody.signerFor(material.caKey),
    nowMs,
  });
}
