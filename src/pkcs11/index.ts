// Public face of src/pkcs11: CA keys kept in a PKCS#11 token (--signer pkcs11:…, RFC 7512). Loaded
// only when --signer names a token, so no other command loads the native module. Never logs or
// returns the PIN.

import { readFileSync } from 'node:fs';
import { describeError, MeshcaError } from '../errors/index.ts';
import { isKeyReference, LOCAL_KEY_CUSTODY, type CaPrivateKey, type KeyCustody, type KeyType, type Signer } from '../pki/index.ts';
import type { Clock } from '../time/index.ts';
import { Pkcs11Token, type Pkcs11Api } from './token.ts';
import { formatKeyUri, parsePkcs11Uri, type Pkcs11Uri } from './uri.ts';

export { parsePkcs11Uri, formatKeyUri, type Pkcs11Uri } from './uri.ts';
export { ecdsaRawToDer, SESSION_POOL_SIZE, REOPEN_INTERVAL_MS, type Pkcs11Api } from './token.ts';

/** A key custody in a token, with its health for /readyz. */
export interface Pkcs11Custody extends KeyCustody {
  readonly token: Pkcs11Token;
  readiness(): { ok: true } | { ok: false; reason: string };
  close(): void;
}

export interface OpenPkcs11Options {
  /** The PIN from MESHCA_SIGNER_PIN, when the URI has no pin-source (read by the command, not here). */
  readonly envPin?: string;
  readonly clock: Clock;
  readonly api?: Pkcs11Api;
}

function readPin(uri: Pkcs11Uri, envPin: string | undefined): string {
  if (uri.pinSource) {
    try {
      return readFileSync(uri.pinSource, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new MeshcaError('BAD_CONFIG', `--signer: the pin-source file ${uri.pinSource} cannot be read (${(err as NodeJS.ErrnoException).code ?? describeError(err)})`);
    }
  }
  if (envPin !== undefined && envPin !== '') return envPin;
  throw new MeshcaError('BAD_CONFIG', '--signer: no PIN; add pin-source=<file> to the URI or set MESHCA_SIGNER_PIN');
}

/** Opens the token --signer names (fails the start if it is absent or the PIN is wrong). */
export function openPkcs11Custody(signer: string, opts: OpenPkcs11Options): Pkcs11Custody {
  const uri = parsePkcs11Uri(signer);
  if (!uri.modulePath && !opts.api) throw new MeshcaError('BAD_CONFIG', '--signer: module-path=<PKCS#11 library> is missing (e.g. /usr/lib/softhsm/libsofthsm2.so)');
  const token = new Pkcs11Token({ modulePath: uri.modulePath ?? '(test module)', token: uri.token, pin: readPin(uri, opts.envPin), clock: opts.clock, ...(opts.api ? { api: opts.api } : {}) });
  const signers = new Map<string, Signer>();
  return {
    name: `pkcs11 token "${uri.token}"`,
    token,
    signerFor(key: CaPrivateKey): Signer {
      if (!isKeyReference(key)) return LOCAL_KEY_CUSTODY.signerFor(key);
      const ref = parsePkcs11Uri(key.uri);
      if (ref.token !== uri.token) throw new MeshcaError('KEYS_MISSING', `the CA key is in token "${ref.token}" but --signer opens "${uri.token}"`);
      if (!ref.id) throw new MeshcaError('BAD_KEY_FILE', `the key reference ${key.uri} has no id`);
      const cacheKey = ref.id.toString('hex');
      let held = signers.get(cacheKey);
      if (!held) {
        held = token.signer(ref.id);
        signers.set(cacheKey, held);
      }
      return held;
    },
    async generate(keyType: KeyType) {
      const made = token.generate(keyType, uri.object);
      return { key: { kind: 'pkcs11' as const, uri: formatKeyUri(uri.token, uri.object, made.id) }, publicKey: made.publicKey };
    },
    readiness() {
      const reason = token.unavailableReason;
      return reason === undefined ? { ok: true } : { ok: false, reason: `the signing token is unavailable: ${reason}` };
    },
    close: () => token.close(),
  };
}
