// Key custody for commands that make or use the intermediate's key: memory (the key store's files)
// unless --signer names a PKCS#11 token. The PKCS#11 module is loaded only then; the PIN comes from
// the URI's pin-source file or MESHCA_SIGNER_PIN, never from a flag.

import { LOCAL_KEY_CUSTODY, type KeyCustody } from '../pki/index.ts';
import type { CommandContext } from './command.ts';

export const SIGNER_PIN_ENV = 'MESHCA_SIGNER_PIN';

export async function openCustody(signer: string | undefined, ctx: CommandContext): Promise<{ custody: KeyCustody; close: () => void }> {
  if (signer === undefined) return { custody: LOCAL_KEY_CUSTODY, close: () => {} };
  const { openPkcs11Custody } = await import('../pkcs11/index.ts');
  const pin = ctx.env[SIGNER_PIN_ENV];
  const custody = openPkcs11Custody(signer, { clock: ctx.clock, ...(pin !== undefined ? { envPin: pin } : {}) });
  return { custody, close: () => custody.close() };
}
