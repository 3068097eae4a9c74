// The fake API server's service-account token issuer: signs bound projected tokens (KEP-1205 claim
// shape) and legacy secret-based ones with rotatable RS256 keys, publishes them as a JWKS, and
// answers TokenReview the way kube-apiserver does (audience intersection, expiry, bound pod alive).
// Test use only.

import { createHash, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, errors, jwtVerify, SignJWT, type JWK } from 'jose';

export const LEGACY_ISSUER = 'kubernetes/serviceaccount';

export interface ReviewUser {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface ReviewStatus {
  authenticated: boolean;
  user?: ReviewUser;
  audiences?: string[];
  error?: string;
}

export interface MintOptions {
  namespace: string;
  serviceAccount: string;
  /** Bind the token to a pod (created in the fake's pod table if new). */
  podName?: string;
  podUid?: string;
  nodeName?: string;
  audiences?: string[];
  expiresInSeconds?: number;
  /** Seconds from now; negative makes a token issued in the past. */
  issuedAtOffsetSeconds?: number;
  /** Sign with a key the issuer does not publish (a forged token). */
  foreignKey?: boolean;
  /** Override `sub` (to make it disagree with the kubernetes.io claims). */
  subject?: string;
}

interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicJwk: JWK;
}

interface Pod {
  readonly uid: string;
  readonly nodeName: string;
  readonly nodeUid: string;
}

function makeSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  // kube-apiserver's kid: base64url(sha256(DER SPKI)).
  const kid = createHash('sha256').update(publicKey.export({ format: 'der', type: 'spki' })).digest('base64url');
  return { kid, privateKey, publicJwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, use: 'sig', alg: 'RS256' } };
}

export class KubeTokenIssuer {
  issuer: string;
  readonly apiAudiences: readonly string[];
  private readonly now: () => number;
  private keys: SigningKey[] = [makeSigningKey()];
  private readonly foreign = makeSigningKey();
  private readonly pods = new Map<string, Pod>();
  private readonly saUids = new Map<string, string>();
  private readonly registered = new Map<string, ReviewStatus>();

  constructor(issuer: string, apiAudiences: readonly string[], now: () => number) {
    this.issuer = issuer;
    this.apiAudiences = apiAudiences;
    this.now = now;
  }

  get currentKid(): string {
    return this.keys[0]!.kid;
  }

  /** New key signs from now on; the old one stays published unless retired. */
  rotateKey(opts: { retireOld?: boolean } = {}): string {
    const next = makeSigningKey();
    this.keys = opts.retireOld ? [next] : [next, ...this.keys];
    return next.kid;
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  discovery(jwksUri: string): Record<string, unknown> {
    return {
      issuer: this.issuer,
      jwks_uri: jwksUri,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
    };
  }

  private saUid(ns: string, sa: string): string {
    const key = `${ns}/${sa}`;
    let uid = this.saUids.get(key);
    if (!uid) this.saUids.set(key, (uid = randomUUID()));
    return uid;
  }

  addPod(namespace: string, name: string, opts: { uid?: string; nodeName?: string } = {}): { uid: string; nodeName: string } {
    const existing = this.pods.get(`${namespace}/${name}`);
    if (existing && (!opts.uid || opts.uid === existing.uid)) return existing;
    const pod = { uid: opts.uid ?? randomUUID(), nodeName: opts.nodeName ?? 'node-1', nodeUid: randomUUID() };
    this.pods.set(`${namespace}/${name}`, pod);
    return pod;
  }

  deletePod(namespace: string, name: string): void {
    this.pods.delete(`${namespace}/${name}`);
  }

  async mint(opts: MintOptions): Promise<string> {
    const nowS = Math.floor(this.now() / 1000) + (opts.issuedAtOffsetSeconds ?? 0);
    const k8s: Record<string, unknown> = {
      namespace: opts.namespace,
      serviceaccount: { name: opts.serviceAccount, uid: this.saUid(opts.namespace, opts.serviceAccount) },
    };
    if (opts.podName) {
      const pod = this.addPod(opts.namespace, opts.podName, { ...(opts.podUid ? { uid: opts.podUid } : {}), ...(opts.nodeName ? { nodeName: opts.nodeName } : {}) });
      k8s.pod = { name: opts.podName, uid: pod.uid };
      k8s.node = { name: pod.nodeName, uid: this.pods.get(`${opts.namespace}/${opts.podName}`)!.nodeUid };
    }
    const key = opts.foreignKey ? this.foreign : this.keys[0]!;
    return new SignJWT({ 'kubernetes.io': k8s })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid })
      .setIssuer(this.issuer)
      .setSubject(opts.subject ?? `system:serviceaccount:${opts.namespace}:${opts.serviceAccount}`)
      .setAudience(opts.audiences ?? ['meshca'])
      .setIssuedAt(nowS)
      .setNotBefore(nowS)
      .setExpirationTime(nowS + (opts.expiresInSeconds ?? 3600))
      .setJti(randomUUID())
      .sign(key.privateKey);
  }

  /** A secret-based token as Kubernetes < 1.24 made them: no exp, no aud, legacy issuer. */
  async mintLegacy(namespace: string, serviceAccount: string): Promise<string> {
    return new SignJWT({
      'kubernetes.io/serviceaccount/namespace': namespace,
      'kubernetes.io/serviceaccount/secret.name': `${serviceAccount}-token-abcde`,
      'kubernetes.io/serviceaccount/service-account.name': serviceAccount,
      'kubernetes.io/serviceaccount/service-account.uid': this.saUid(namespace, serviceAccount),
    })
      .setProtectedHeader({ alg: 'RS256', kid: this.keys[0]!.kid })
      .setIssuer(LEGACY_ISSUER)
      .setSubject(`system:serviceaccount:${namespace}:${serviceAccount}`)
      .sign(this.keys[0]!.privateKey);
  }

  /** Any token string the test wants reviewed with a fixed answer (other groups, odd audiences…). */
  register(token: string, status: ReviewStatus): void {
    this.registered.set(token, status);
  }

  /** What kube-apiserver's TokenReview would say for this token and these requested audiences. */
  async review(token: string, requested: readonly string[]): Promise<ReviewStatus> {
    const fixed = this.registered.get(token);
    if (fixed) return structuredClone(fixed);
    const unauthenticated = (error: string): ReviewStatus => ({ authenticated: false, audiences: [], error: `[invalid bearer token, ${error}]` });
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      return unauthenticated('token is not a JWT');
    }
    const key = this.keys.find((k) => k.kid === kid);
    if (!key) return unauthenticated('square/go-jose: error in cryptographic primitive');
    const wanted = requested.length > 0 ? requested : this.apiAudiences;
    let payload;
    try {
      ({ payload } = await jwtVerify(token, createPublicKey({ key: key.publicJwk as never, format: 'jwk' }), {
        currentDate: new Date(this.now()),
        clockTolerance: 60,
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) return unauthenticated('square/go-jose/jwt: validation failed, token is expired (exp)');
      return unauthenticated('square/go-jose: error in cryptographic primitive');
    }
    const ns = String(payload.sub ?? '').split(':')[2] ?? '';
    const sa = String(payload.sub ?? '').split(':')[3] ?? '';
    if (payload.iss === LEGACY_ISSUER) {
      // Legacy tokens carry no audience: they are valid only for the API server's own audiences.
      const audiences = wanted.filter((a) => this.apiAudiences.includes(a));
      if (audiences.length === 0) return unauthenticated(`token audiences ${JSON.stringify(this.apiAudiences)} is invalid for the target audiences ${JSON.stringify(wanted)}`);
      return { authenticated: true, audiences, user: this.user(ns, sa, {}) };
    }
    const tokenAud = Array.isArray(payload.aud) ? payload.aud : payload.aud ? [payload.aud] : [];
    const audiences = wanted.filter((a) => tokenAud.includes(a));
    if (audiences.length === 0) return unauthenticated(`token audiences ${JSON.stringify(tokenAud)} is invalid for the target audiences ${JSON.stringify(wanted)}`);
    const bound = (payload['kubernetes.io'] as { pod?: { name: string; uid: string } } | undefined)?.pod;
    const extra: Record<string, string[]> = { 'authentication.kubernetes.io/credential-id': [`JTI=${payload.jti}`] };
    if (bound) {
      const pod = this.pods.get(`${ns}/${bound.name}`);
      if (!pod) return unauthenticated(`pods "${bound.name}" not found`);
      if (pod.uid !== bound.uid) {
        return unauthenticated(`the UID in the bound object reference (${bound.uid}) does not match the UID in record. The object might have been deleted and then recreated`);
      }
      extra['authentication.kubernetes.io/pod-name'] = [bound.name];
      extra['authentication.kubernetes.io/pod-uid'] = [pod.uid];
      extra['authentication.kubernetes.io/node-name'] = [pod.nodeName];
      extra['authentication.kubernetes.io/node-uid'] = [pod.nodeUid];
    }
    return { authenticated: true, audiences, user: this.user(ns, sa, extra) };
  }

  private user(ns: string, sa: string, extra: Record<string, string[]>): ReviewUser {
    return {
      username: `system:serviceaccount:${ns}:${sa}`,
      uid: this.saUid(ns, sa),
      groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
      extra,
    };
  }
}
