// Turns secrets into Envoy's wire messages, once: a rotation pushed to ten thousand streams is
// encoded one time and the same bytes are written to each. Never logs what it encodes.

import { createHash } from 'node:crypto';
import { loadSdsProtos } from './protos.ts';
import { SECRET_TYPE_URL, type SdsSecret } from './secrets.ts';

/** An encoded response, shareable between streams. The nonce is unique per encoding. */
export interface EncodedResponse {
  readonly key: string;
  readonly bytes: Buffer;
  readonly nonce: string;
  readonly version: string;
}

/** Distinct responses kept for reuse; more than this are only seen around rotations. */
const MAX_CACHED_RESPONSES = 64;
const VERSION_HEX_CHARS = 16;

const anyValueOf = new WeakMap<SdsSecret, Buffer>();
let nonceCounter = 0;

function nextNonce(): string {
  nonceCounter += 1;
  return nonceCounter.toString(36);
}

/** envoy.extensions.transport_sockets.tls.v3.Secret, as Istio's agent sends it. */
function secretMessage(secret: SdsSecret): object {
  if (secret.kind === 'tls-certificate') {
    return {
      name: secret.name,
      tls_certificate: {
        certificate_chain: { inline_bytes: Buffer.from(secret.chainPem) },
        private_key: { inline_bytes: Buffer.from(secret.privateKeyPem) },
      },
    };
  }
  return { name: secret.name, validation_context: { trusted_ca: { inline_bytes: Buffer.from(secret.bundlePem) } } };
}

export function encodeSecretValue(secret: SdsSecret): Buffer {
  let bytes = anyValueOf.get(secret);
  if (!bytes) {
    bytes = loadSdsProtos().encodeSecret(secretMessage(secret));
    anyValueOf.set(secret, bytes);
  }
  return bytes;
}

function combinedVersion(secrets: readonly SdsSecret[], key: string): string {
  if (secrets.length === 1) return secrets[0]!.version;
  return createHash('sha256').update(key).digest('hex').slice(0, VERSION_HEX_CHARS);
}

/** Encodes responses for one secret source and remembers recent ones by content. */
export class ResponseEncoder {
  readonly #cache = new Map<string, EncodedResponse>();

  /**
   * A state-of-the-world response carrying `secrets` (sorted by name by the caller), or undefined
   * when it would say exactly what the stream's last response said.
   */
  sotw(secrets: readonly SdsSecret[], last?: { readonly key: string; readonly nonce: string }): EncodedResponse | undefined {
    const key = `s|${secrets.map((s) => `${s.name}@${s.version}`).join(',')}`;
    if (key === last?.key) return undefined;
    return this.#cached(key, last?.nonce, (nonce) => {
      const version = combinedVersion(secrets, key);
      const bytes = loadSdsProtos().encodeResponse({
        version_info: version,
        type_url: SECRET_TYPE_URL,
        nonce,
        resources: secrets.map((s) => ({ type_url: SECRET_TYPE_URL, value: encodeSecretValue(s) })),
      });
      return { key, bytes, nonce, version };
    });
  }

  /** An incremental response: only `secrets` that changed and names that went away. */
  delta(secrets: readonly SdsSecret[], removed: readonly string[], avoidNonce?: string): EncodedResponse {
    const key = `d|${secrets.map((s) => `${s.name}@${s.version}`).join(',')}|${removed.join(',')}`;
    return this.#cached(key, avoidNonce, (nonce) => {
      const version = secrets.length > 0 ? combinedVersion(secrets, key) : 'removed';
      const bytes = loadSdsProtos().encodeDeltaResponse({
        system_version_info: version,
        type_url: SECRET_TYPE_URL,
        nonce,
        resources: secrets.map((s) => ({
          name: s.name,
          version: s.version,
          resource: { type_url: SECRET_TYPE_URL, value: encodeSecretValue(s) },
        })),
        removed_resources: [...removed],
      });
      return { key, bytes, nonce, version };
    });
  }

  #cached(key: string, avoidNonce: string | undefined, make: (nonce: string) => EncodedResponse): EncodedResponse {
    const hit = this.#cache.get(key);
    // A stream must never see the same nonce twice in a row, or it could not tell an ACK apart.
    if (hit && hit.nonce !== avoidNonce) return hit;
    if (this.#cache.size >= MAX_CACHED_RESPONSES) this.#cache.clear();
    const made = make(nextNonce());
    this.#cache.set(key, made);
    return made;
  }
}
