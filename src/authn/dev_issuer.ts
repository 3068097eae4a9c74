// meshca's development token issuer: a signing key kept in the key directory that mints
// Kubernetes-shaped service-account tokens (`meshca token mint`), so the whole flow runs without a
// cluster. For development only: `serve --dev-tokens=false` stops trusting it.

import { createPublicKey, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, SignJWT, type JWK, type JWTVerifyGetKey } from 'jose';
import { generateKeyPair, readOrCreatePrivateKeyFile } from '../pki/index.ts';
import { MeshcaError } from '../errors/index.ts';

export const DEV_TOKEN_KEY_FILE = 'dev-token-key.pem';
export const DEV_TOKEN_ISSUER = 'https://meshca.invalid/dev-token-issuer';

export interface DevIssuer {
  readonly issuer: string;
  readonly keySet: JWTVerifyGetKey;
  readonly jwks: { keys: JWK[] };
  mint(claims: MintRequest): Promise<string>;
}

export interface MintRequest {
  namespace: string;
  serviceAccount: string;
  podName?: string;
  /** One audience, or several (a JWT's aud may list more than one). */
  audience: string | readonly string[];
  ttlMs: number;
  nowMs: number;
}

/** Makes the development issuer key (0600) in `keysDir` if there is none; processes racing agree on one. */
export function ensureDevIssuerKey(keysDir: string): void {
  const path = join(keysDir, DEV_TOKEN_KEY_FILE);
  if (!existsSync(path)) readOrCreatePrivateKeyFile(path, () => generateKeyPair('ec-p256').privateKey);
}

/** Loads the development issuer key from `keysDir`, making it (0600) when `create` and missing. */
export async function loadDevIssuer(keysDir: string, create: boolean): Promise<DevIssuer> {
  const path = join(keysDir, DEV_TOKEN_KEY_FILE);
  if (!create && !existsSync(path)) {
    throw new MeshcaError('KEYS_MISSING', `no development token issuer key at ${path}; start "meshca serve" once (it makes one) or run "meshca ca init"`);
  }
  const key = readOrCreatePrivateKeyFile(path, () => generateKeyPair('ec-p256').privateKey);
  const publicJwk = await exportJWK(createPublicKey(key));
  const kid = await calculateJwkThumbprint(publicJwk);
  const jwks = { keys: [{ ...publicJwk, kid, alg: 'ES256', use: 'sig' }] };
  return {
    issuer: DEV_TOKEN_ISSUER,
    keySet: createLocalJWKSet(jwks),
    jwks,
    async mint(req: MintRequest): Promise<string> {
      const iat = Math.floor(req.nowMs / 1000);
      const podUid = req.podName ? randomUUID() : undefined;
      return new SignJWT({
        'kubernetes.io': {
          namespace: req.namespace,
          serviceaccount: { name: req.serviceAccount, uid: randomUUID() },
          ...(req.podName ? { pod: { name: req.podName, uid: podUid } } : {}),
        },
      })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
        .setIssuer(DEV_TOKEN_ISSUER)
        .setSubject(`system:serviceaccount:${req.namespace}:${req.serviceAccount}`)
        .setAudience(typeof req.audience === 'string' ? [req.audience] : [...req.audience])
        .setIssuedAt(iat)
        .setNotBefore(iat)
        .setExpirationTime(iat + Math.round(req.ttlMs / 1000))
        .setJti(randomUUID())
        .sign(key);
    },
  };
}
