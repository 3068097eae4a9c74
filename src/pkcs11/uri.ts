// The --signer value: a PKCS#11 URI (RFC 7512) naming the token and the key label, with the module
// to load and where the PIN comes from. A PIN in the URI itself (pin-value) is refused: a flag
// value shows up in process lists and shell history.

import { MeshcaError } from '../errors/index.ts';

export interface Pkcs11Uri {
  /** CKA_LABEL of the token (RFC 7512 `token`). */
  readonly token: string;
  /** CKA_LABEL given to keys meshca makes, and matched when loading (`object`). */
  readonly object: string;
  /** CKA_ID of one key (`id`), for references to a key already made. */
  readonly id?: Buffer;
  /** The PKCS#11 library (`module-path`, RFC 7512 §2.3). */
  readonly modulePath?: string;
  /** A file holding the user PIN (`pin-source`, RFC 7512 §2.3; a path or a file: URI). */
  readonly pinSource?: string;
}

const bad = (why: string) => new MeshcaError('BAD_CONFIG', `--signer: ${why}; expected pkcs11:token=<label>;object=<key label>?module-path=<library>&pin-source=<file>`);

/** RFC 3986 percent-decoding as RFC 7512 §2.3 requires for every attribute value. */
function decode(value: string, name: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '%') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw bad(`attribute ${name} has a bad percent-encoding`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

function attributes(part: string, separator: string): Map<string, string> {
  const out = new Map<string, string>();
  if (part === '') return out;
  for (const pair of part.split(separator)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw bad(`"${pair}" is not name=value`);
    const name = pair.slice(0, eq).toLowerCase();
    if (out.has(name)) throw bad(`attribute ${name} is given twice`);
    out.set(name, pair.slice(eq + 1));
  }
  return out;
}

export function parsePkcs11Uri(text: string): Pkcs11Uri {
  if (!text.startsWith('pkcs11:')) throw bad('it must start with pkcs11:');
  const rest = text.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const path = attributes(q < 0 ? rest : rest.slice(0, q), ';');
  const query = attributes(q < 0 ? '' : rest.slice(q + 1), '&');
  if (query.has('pin-value')) throw bad('pin-value is refused: put the PIN in a file named by pin-source (or MESHCA_SIGNER_PIN), never in a flag');
  const str = (m: Map<string, string>, name: string) => (m.has(name) ? decode(m.get(name)!, name).toString('utf8') : undefined);
  const token = str(path, 'token');
  const object = str(path, 'object');
  if (!token) throw bad('token=<label> is missing');
  if (!object) throw bad('object=<key label> is missing');
  const pinSource = str(query, 'pin-source');
  const modulePath = str(query, 'module-path');
  return {
    token,
    object,
    ...(path.has('id') ? { id: decode(path.get('id')!, 'id') } : {}),
    ...(modulePath ? { modulePath } : {}),
    ...(pinSource ? { pinSource: pinSource.startsWith('file:') ? decodeURIComponent(new URL(pinSource).pathname) : pinSource } : {}),
  };
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

function encode(value: string | Buffer): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += typeof value === 'string' && b < 0x80 && UNRESERVED.test(c) ? c : `%${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The reference to one private key (kept in the key store as ca-key.pkcs11): no module, no PIN. */
export function formatKeyUri(token: string, object: string, id: Buffer): string {
  return `pkcs11:token=${encode(token)};object=${encode(object)};id=${encode(id)};type=private`;
}
