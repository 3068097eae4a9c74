// Public face of src/ca: the key directory, `ca init`, TTL rules and the issuance pipeline.
// Knows no transport: servers parse, authenticate, call these, and map errors.
export { CACERTS_FILES, TLS_FILES, inspectKeyDirectory, readKeyDirectory, writeCacertsFiles, readCaKeyFile, writeCaKeyFile, type CacertsFiles, type CaMaterial, type KeyDirectoryState } from './key_directory.ts';
export { initCa, type InitRequest, type InitResult } from './init.ts';
export { resolveTtl, validateTtlPolicy, boundRenewalTtl, type TtlPolicy } from './ttl.ts';
export { DEFAULT_LEAF_TTL_MS, MAX_LEAF_TTL_MS, MIN_LEAF_TTL_MS, DEFAULT_MAX_RENEWAL_AGE_MS } from './settings/index.ts';
export { SvidIssuer, type IssuerDeps, type ServingCertificate, type ServingCertificateRequest, type SvidRequest, type X509Svid } from './issue.ts';
export { loadAuthorityFromDirectory } from './load.ts';
export { grantTimeOf, memoryGrantLedger, GRANTED_AT_DETAIL, type GrantLedger } from './renewal_bound.ts';
export { bindTrustDomain, trustDomainOfAuthority, DEFAULT_TRUST_DOMAIN } from './trust_domain.ts';
export { RenewalEngine, type CertificateWindow, type RenewalEngineOptions, type RenewalOutcome, renewAtMs, backoffDelayMs, RENEW_RATIO, RENEW_JITTER, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, PERMANENT_RETRY_MS, type FailureKind } from './renewal/index.ts';
export { makeIntermediateRequest, readPendingRequest, installIntermediate, PENDING_DIR, type IntermediateRequest, type PendingRequest, type InstallRequest, type InstallResult } from './offline_root.ts';
