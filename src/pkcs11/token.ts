// One PKCS#11 token as meshca uses it: the module loaded once per process, a pool of logged-in
// sessions, keys found by CKA_ID and made inside the token (sensitive, never extractable). A lost
// session or a removed token fails closed (SIGNER_UNAVAILABLE → UNAVAILABLE, /readyz 503) and is
// reopened on the next use once the token is back. The PIN is held only to log in again; it is
// never logged, never put in an error, never written.

import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { describeError, MeshcaError } from '../errors/index.ts';
import { ECDSA_WITH_SHA256, ECDSA_WITH_SHA384, SHA256_WITH_RSA, type KeyType, type SignatureAlgorithm, type Signer } from '../pki/index.ts';
import type { Clock } from '../time/index.ts';

/** The subset of pkcs11js's PKCS11 class used here; tests wrap it to pull the token out. */
export interface Pkcs11Api {
  load(path: string): void;
  C_Initialize(options?: { flags: number }): void;
  C_GetSlotList(tokenPresent?: boolean): Buffer[];
  C_GetTokenInfo(slot: Buffer): { label: string };
  C_OpenSession(slot: Buffer, flags: number): Buffer;
  C_CloseSession(session: Buffer): void;
  C_Login(session: Buffer, userType: number, pin?: string): void;
  C_FindObjectsInit(session: Buffer, template: Attribute[]): void;
  C_FindObjects(session: Buffer, maxObjectCount: number): Buffer[];
  C_FindObjectsFinal(session: Buffer): void;
  C_GetAttributeValue(session: Buffer, object: Buffer, template: Attribute[]): Attribute[];
  C_GenerateKeyPair(session: Buffer, mechanism: { mechanism: number; parameter?: Buffer }, publicTemplate: Attribute[], privateTemplate: Attribute[]): { publicKey: Buffer; privateKey: Buffer };
  C_SignInit(session: Buffer, mechanism: { mechanism: number }, key: Buffer): void;
  C_Sign(session: Buffer, data: Buffer, out: Buffer, cb: (err: Error | null, signature: Buffer) => void): void;
}

export interface Attribute {
  type: number;
  value?: number | boolean | string | Buffer | null;
}

// PKCS#11 v2.40 constants (pkcs11t.h), so this file needs the native module only to open a token.
const CKF_OS_LOCKING_OK = 0x2;
const CKF_RW_SESSION = 0x2;
const CKF_SERIAL_SESSION = 0x4;
const CKU_USER = 1;
const CKO_PUBLIC_KEY = 2;
const CKO_PRIVATE_KEY = 3;
const CKK_RSA = 0;
const CKK_EC = 3;
const CKA = { CLASS: 0x0, TOKEN: 0x1, PRIVATE: 0x2, LABEL: 0x3, KEY_TYPE: 0x100, ID: 0x102, SENSITIVE: 0x103, SIGN: 0x108, VERIFY: 0x10a, MODULUS: 0x120, MODULUS_BITS: 0x121, PUBLIC_EXPONENT: 0x122, EXTRACTABLE: 0x162, EC_PARAMS: 0x180, EC_POINT: 0x181 } as const;
const CKM = { RSA_PKCS_KEY_PAIR_GEN: 0x0, SHA256_RSA_PKCS: 0x40, EC_KEY_PAIR_GEN: 0x1040, ECDSA: 0x1041 } as const;
const CKR = { USER_ALREADY_LOGGED_IN: 0x100, CRYPTOKI_ALREADY_INITIALIZED: 0x191 } as const;
/** Return values that mean the token or the session is gone (pkcs11t.h): drop every session, reopen later. */
const LOST = new Set([
  0x5 /* GENERAL_ERROR */, 0x30 /* DEVICE_ERROR */, 0x31 /* DEVICE_MEMORY */, 0x32 /* DEVICE_REMOVED */, 0x60 /* KEY_HANDLE_INVALID */,
  0x82 /* OBJECT_HANDLE_INVALID */, 0xb0 /* SESSION_CLOSED */, 0xb3 /* SESSION_HANDLE_INVALID */, 0xe0 /* TOKEN_NOT_PRESENT */,
  0xe1 /* TOKEN_NOT_RECOGNIZED */, 0x101 /* USER_NOT_LOGGED_IN */, 0x190 /* CRYPTOKI_NOT_INITIALIZED */,
]);

/** DER OIDs (with tag and length) of the curves meshca makes, as CKA_EC_PARAMS holds them. */
const EC_PARAMS = { 'P-256': Buffer.from('06082a8648ce3d030107', 'hex'), 'P-384': Buffer.from('06052b81040022', 'hex') } as const;
/** How many sessions sign at once; a token serialises beyond its own limit anyway. */
export const SESSION_POOL_SIZE = 4;
// One more session, used only by synchronous calls (finding and making keys): JavaScript runs them
// one at a time, so it is never shared with a signature in flight on another thread.
/** After a failure, reopening is tried at most this often (a pulled token is not hammered). */
export const REOPEN_INTERVAL_MS = 1_000;
/** Bytes of random CKA_ID given to each key meshca makes. */
const KEY_ID_BYTES = 16;

interface LoadedModule {
  readonly api: Pkcs11Api;
}
const modules = new Map<string, LoadedModule>();

/** Loads pkcs11js (an optional dependency, built natively) and the module once per process. */
function loadModule(modulePath: string): LoadedModule {
  const held = modules.get(modulePath);
  if (held) return held;
  let pkcs11js: { PKCS11: new () => Pkcs11Api };
  try {
    pkcs11js = createRequire(import.meta.url)('pkcs11js') as typeof pkcs11js;
  } catch (err) {
    throw new MeshcaError('BAD_CONFIG', `--signer pkcs11: needs the pkcs11js package, which is not installed or did not build (npm install needs python3, make and g++): ${describeError(err)}`, { cause: err });
  }
  const api = new pkcs11js.PKCS11();
  try {
    api.load(modulePath);
  } catch (err) {
    throw new MeshcaError('BAD_CONFIG', `--signer: the PKCS#11 module ${modulePath} could not be loaded: ${describeError(err)}`, { cause: err });
  }
  initialize(api);
  const loaded = { api };
  modules.set(modulePath, loaded);
  return loaded;
}

function initialize(api: Pkcs11Api): void {
  try {
    // Signatures run on libuv's threads, several sessions at once: the module must lock (PKCS#11 §5.4).
    api.C_Initialize({ flags: CKF_OS_LOCKING_OK });
  } catch (err) {
    if (codeOf(err) !== CKR.CRYPTOKI_ALREADY_INITIALIZED) throw err;
  }
}

function codeOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** X.509 wants ECDSA-Sig-Value (RFC 3279 §2.2.3); PKCS#11 returns r‖s. */
export function ecdsaRawToDer(raw: Uint8Array): Buffer {
  const half = raw.length / 2;
  const int = (bytes: Uint8Array) => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    const trimmed = Buffer.from(bytes.subarray(i));
    const body = trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
    return Buffer.concat([Buffer.from([0x02, body.length]), body]);
  };
  const seq = Buffer.concat([int(raw.subarray(0, half)), int(raw.subarray(half))]);
  // r and s of P-256/P-384 keep the body under 128 bytes: one length byte.
  return Buffer.concat([Buffer.from([0x30, seq.length]), seq]);
}

const b64url = (b: Buffer) => b.toString('base64url');

/** The public key object's key, as a KeyObject (so the certificate can be checked against it). */
function publicKeyOf(api: Pkcs11Api, session: Buffer, handle: Buffer): KeyObject {
  const [keyType] = api.C_GetAttributeValue(session, handle, [{ type: CKA.KEY_TYPE }]);
  const raw = keyType!.value as Buffer;
  const kt = raw.length === 8 ? Number(raw.readBigUInt64LE()) : raw.readUInt32LE();
  if (kt === CKK_EC) {
    const [params, point] = api.C_GetAttributeValue(session, handle, [{ type: CKA.EC_PARAMS }, { type: CKA.EC_POINT }]);
    const p = params!.value as Buffer;
    const crv = p.equals(EC_PARAMS['P-256']) ? 'P-256' : p.equals(EC_PARAMS['P-384']) ? 'P-384' : undefined;
    if (!crv) throw new MeshcaError('UNSUPPORTED_KEY', 'the token key is on a curve meshca does not sign with; use P-256 or P-384');
    // CKA_EC_POINT is the DER OCTET STRING of the uncompressed point 04‖x‖y.
    let q = point!.value as Buffer;
    if (q[0] === 0x04 && q[1] === q.length - 2) q = q.subarray(2);
    else if (q[0] === 0x04 && q[1] === 0x81 && q[2] === q.length - 3) q = q.subarray(3);
    const n = (q.length - 1) / 2;
    return createPublicKey({ key: { kty: 'EC', crv, x: b64url(q.subarray(1, 1 + n)), y: b64url(q.subarray(1 + n)) }, format: 'jwk' });
  }
  if (kt === CKK_RSA) {
    const [mod, exp] = api.C_GetAttributeValue(session, handle, [{ type: CKA.MODULUS }, { type: CKA.PUBLIC_EXPONENT }]);
    return createPublicKey({ key: { kty: 'RSA', n: b64url(mod!.value as Buffer), e: b64url(exp!.value as Buffer) }, format: 'jwk' });
  }
  throw new MeshcaError('UNSUPPORTED_KEY', 'the token key is neither EC nor RSA');
}

function algorithmOf(publicKey: KeyObject): SignatureAlgorithm {
  if (publicKey.asymmetricKeyType === 'rsa') return SHA256_WITH_RSA;
  return publicKey.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? ECDSA_WITH_SHA384 : ECDSA_WITH_SHA256;
}

export interface TokenOptions {
  readonly modulePath: string;
  readonly token: string;
  readonly pin: string;
  readonly clock: Clock;
  /** Tests pass a wrapped module; default: pkcs11js loading modulePath. */
  readonly api?: Pkcs11Api;
}

interface KeyHandles {
  readonly privateKey: Buffer;
  readonly publicKey: KeyObject;
}

/** A token opened for signing; sessions are pooled, and reopened after the token was lost. */
export class Pkcs11Token {
  readonly label: string;
  readonly #opts: TokenOptions;
  readonly #api: Pkcs11Api;
  #sessions: Buffer[] = [];
  #lookup: Buffer | undefined;
  #free: Buffer[] = [];
  #waiting: Array<(s: Buffer) => void> = [];
  #keys = new Map<string, KeyHandles>();
  #down: string | undefined;
  #lastAttemptMs = -Infinity;
  #generation = 0;

  constructor(opts: TokenOptions) {
    this.#opts = opts;
    this.label = opts.token;
    this.#api = opts.api ?? loadModule(opts.modulePath).api;
    if (opts.api) initialize(opts.api);
    // Opening at start fails the start: a CA told to sign in a token never starts without it.
    this.#open();
  }

  /** Undefined while the token answers; otherwise why it does not. */
  get unavailableReason(): string | undefined {
    if (this.#down) this.#tryReopen();
    return this.#down;
  }

  #open(): void {
    const api = this.#api;
    const slot = api.C_GetSlotList(true).find((s) => api.C_GetTokenInfo(s).label.trim() === this.#opts.token);
    if (!slot) throw new MeshcaError('SIGNER_UNAVAILABLE', `no PKCS#11 token labelled "${this.#opts.token}" is present in ${this.#opts.modulePath}`);
    const sessions: Buffer[] = [];
    try {
      for (let i = 0; i <= SESSION_POOL_SIZE; i++) sessions.push(api.C_OpenSession(slot, CKF_RW_SESSION | CKF_SERIAL_SESSION));
      try {
        api.C_Login(sessions[0]!, CKU_USER, this.#opts.pin);
      } catch (err) {
        // Login state is per application and token: the other sessions share it.
        if (codeOf(err) !== CKR.USER_ALREADY_LOGGED_IN) throw err;
      }
    } catch (err) {
      for (const s of sessions) this.#closeQuietly(s);
      // The module's message names the failure (CKR_PIN_INCORRECT…), never the PIN.
      throw new MeshcaError('SIGNER_UNAVAILABLE', `could not log in to PKCS#11 token "${this.#opts.token}": ${describeError(err)}`, { cause: err });
    }
    this.#sessions = sessions;
    this.#lookup = sessions[0];
    this.#free = sessions.slice(1);
    this.#keys.clear();
    this.#down = undefined;
    this.#generation++;
  }

  #closeQuietly(session: Buffer): void {
    try {
      this.#api.C_CloseSession(session);
    } catch {
      // Already gone with the token.
    }
  }

  #tryReopen(): void {
    const nowMs = this.#opts.clock.now();
    if (nowMs - this.#lastAttemptMs < REOPEN_INTERVAL_MS) return;
    this.#lastAttemptMs = nowMs;
    try {
      this.#open();
    } catch (err) {
      this.#down = describeError(err);
    }
  }

  /** Any failure of a call marks the token down: every session is dropped and reopened later. */
  #fail(err: unknown, what: string): MeshcaError {
    if (err instanceof MeshcaError) return err;
    const reason = `${what} on PKCS#11 token "${this.#opts.token}" failed: ${describeError(err)}`;
    const code = codeOf(err);
    // A refusal of this one call (a mechanism the token lacks…) leaves the sessions as they are.
    if (code === undefined || !LOST.has(code)) return new MeshcaError('SIGNER_UNAVAILABLE', reason, { cause: err });
    this.#down = reason;
    this.#lastAttemptMs = this.#opts.clock.now();
    for (const s of this.#sessions) this.#closeQuietly(s);
    this.#sessions = [];
    this.#lookup = undefined;
    this.#free = [];
    return new MeshcaError('SIGNER_UNAVAILABLE', `${reason}; issuance resumes when the token is back`, { cause: err });
  }

  #ensureUp(): void {
    if (this.#down) {
      this.#tryReopen();
      if (this.#down) throw new MeshcaError('SIGNER_UNAVAILABLE', `PKCS#11 token "${this.#opts.token}" is unavailable (${this.#down}); issuance resumes when it is back`);
    }
  }

  /** Runs a synchronous call on the lookup session. */
  #sync<T>(what: string, fn: (session: Buffer) => T): T {
    this.#ensureUp();
    try {
      return fn(this.#lookup!);
    } catch (err) {
      throw this.#fail(err, what);
    }
  }

  async #withSession<T>(what: string, fn: (session: Buffer) => Promise<T> | T): Promise<T> {
    this.#ensureUp();
    const session = this.#free.pop() ?? (await new Promise<Buffer>((resolve) => this.#waiting.push(resolve)));
    const generation = this.#generation;
    try {
      return await fn(session);
    } catch (err) {
      throw this.#fail(err, what);
    } finally {
      // A session from before a reopen is dead; only live ones go back to the pool.
      if (generation === this.#generation && this.#sessions.includes(session)) {
        const next = this.#waiting.shift();
        if (next) next(session);
        else this.#free.push(session);
      }
    }
  }

  #find(session: Buffer, template: Attribute[]): Buffer[] {
    this.#api.C_FindObjectsInit(session, template);
    try {
      return this.#api.C_FindObjects(session, 2);
    } finally {
      this.#api.C_FindObjectsFinal(session);
    }
  }

  /** The key pair with this CKA_ID: its private key handle and public key. */
  keyById(id: Buffer): KeyHandles {
    const cacheKey = id.toString('hex');
    const held = this.#keys.get(cacheKey);
    if (held) return held;
    return this.#sync('finding the key', (session) => {
      const priv = this.#find(session, [{ type: CKA.CLASS, value: CKO_PRIVATE_KEY }, { type: CKA.ID, value: id }]);
      const pub = this.#find(session, [{ type: CKA.CLASS, value: CKO_PUBLIC_KEY }, { type: CKA.ID, value: id }]);
      if (priv.length !== 1 || pub.length !== 1) {
        throw new MeshcaError('KEYS_MISSING', `PKCS#11 token "${this.#opts.token}" holds ${priv.length} private and ${pub.length} public keys with id ${cacheKey}; expected one of each`);
      }
      const handles = { privateKey: priv[0]!, publicKey: publicKeyOf(this.#api, session, pub[0]!) };
      this.#keys.set(cacheKey, handles);
      return handles;
    });
  }

  /** Makes a key pair in the token: private key sensitive and never extractable. */
  generate(keyType: KeyType, label: string): { id: Buffer; publicKey: KeyObject } {
    const id = randomBytes(KEY_ID_BYTES);
    return this.#sync('making a key', (session) => {
      const common: Attribute[] = [{ type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: label }, { type: CKA.ID, value: id }];
      const priv: Attribute[] = [...common, { type: CKA.PRIVATE, value: true }, { type: CKA.SIGN, value: true }, { type: CKA.SENSITIVE, value: true }, { type: CKA.EXTRACTABLE, value: false }];
      let made: { publicKey: Buffer; privateKey: Buffer };
      if (keyType === 'ec-p256' || keyType === 'ec-p384') {
        const params = EC_PARAMS[keyType === 'ec-p256' ? 'P-256' : 'P-384'];
        made = this.#api.C_GenerateKeyPair(session, { mechanism: CKM.EC_KEY_PAIR_GEN }, [...common, { type: CKA.VERIFY, value: true }, { type: CKA.EC_PARAMS, value: params }], priv);
      } else {
        const bits = Number(keyType.slice(4));
        made = this.#api.C_GenerateKeyPair(
          session,
          { mechanism: CKM.RSA_PKCS_KEY_PAIR_GEN },
          [...common, { type: CKA.VERIFY, value: true }, { type: CKA.MODULUS_BITS, value: bits }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }],
          priv,
        );
      }
      const publicKey = publicKeyOf(this.#api, session, made.publicKey);
      this.#keys.set(id.toString('hex'), { privateKey: made.privateKey, publicKey });
      return { id, publicKey };
    });
  }

  /** A Signer over the key with this CKA_ID; each signature takes a pooled session. */
  signer(id: Buffer): Signer {
    const { publicKey } = this.keyById(id);
    const algorithm = algorithmOf(publicKey);
    const sign = (data: Uint8Array) =>
      this.#withSession('signing', async (session) => {
        // Handles die with a reopen (the cache is cleared): look the key up again then.
        const { privateKey } = this.keyById(id);
        if (algorithm === SHA256_WITH_RSA) {
          this.#api.C_SignInit(session, { mechanism: CKM.SHA256_RSA_PKCS }, privateKey);
          return new Uint8Array(await this.#sign(session, Buffer.from(data), Buffer.alloc(publicKey.asymmetricKeyDetails!.modulusLength! / 8)));
        }
        const digest = createHash(algorithm.hash).update(data).digest();
        this.#api.C_SignInit(session, { mechanism: CKM.ECDSA }, privateKey);
        const raw = await this.#sign(session, digest, Buffer.alloc(algorithm === ECDSA_WITH_SHA384 ? 96 : 64));
        return new Uint8Array(ecdsaRawToDer(raw));
      });
    return Object.freeze({ algorithm, publicKey, sign }) satisfies Signer;
  }

  #sign(session: Buffer, data: Buffer, out: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => this.#api.C_Sign(session, data, out, (err, signature) => (err ? reject(err) : resolve(signature))));
  }

  /** Returns the sessions; the module stays loaded for the process (C_Finalize would end other users). */
  close(): void {
    for (const s of this.#sessions) this.#closeQuietly(s);
    this.#sessions = [];
    this.#lookup = undefined;
    this.#free = [];
  }
}
