// Public face of src/authn: who a caller is. Authenticators, the chain, bearer-token helpers and
// the development token issuer. Never logs or stores a token.
export type { Authenticator, AuthOutcome, AuthRequest, Caller, TokenFacts } from './types.ts';
export { authenticateWithChain, type ChainResult } from './chain.ts';
export { createJwtAuthenticator, JWT_CLOCK_TOLERANCE_SECONDS, type JwtAuthenticatorOptions } from './jwt.ts';
export { createMtlsAuthenticator } from './mtls.ts';
export { ensureDevIssuerKey, loadDevIssuer, DEV_TOKEN_ISSUER, DEV_TOKEN_KEY_FILE, type DevIssuer } from './dev_issuer.ts';
export { bearerTokenFrom, tokenSha256, tokenLogId, tokenFacts, MAX_TOKEN_BYTES } from './token.ts';
export { callerFromKubernetesClaims } from './kubernetes_claims.ts';
export { createIdentityPolicy, type IdentityPolicy, type PolicyDecision, type RuntimeDenyList } from './policy.ts';
export { parseDenyTarget, formatDenyTarget, compileDenyList, isDenyEntryInForce, denyEntryMessage, type DenyTarget, type DenyEntry, type DenyCheck } from './deny_list.ts';
// Types only: the Kubernetes authenticators (and their client) load only when --authn asks for them.
export type { KubernetesAuthOptions, KubernetesAuthMode } from './kubernetes/index.ts';
export { createClusterRouter, type ClusterRouterOptions } from './cluster_router.ts';
export { createNodeAuthorizer, IMPERSONATED_IDENTITY_FIELD, type NodeAuthorizer, type NodeAuthorizerOptions, type NodePods, type ImpersonationOutcome } from './node_authorizer.ts';
export type { PodIndex } from './kubernetes/index.ts';
