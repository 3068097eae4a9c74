// Public face of src/pki: keys, CSRs, certificate profiles, issuance and chain checks.
// Knows ASN.1 and keys; never gRPC, never the network.
export { type KeyType, KEY_TYPES, DEFAULT_KEY_TYPE, DEFAULT_ROOT_TTL_MS, DEFAULT_CA_TTL_MS } from './settings/index.ts';
export { type KeyAlgorithm, parseKeyType, generateKeyPair, keyAlgorithmOf } from './key_types.ts';
export { type Signer, type SignatureAlgorithm, createLocalSigner, signatureAlgorithmFor, ECDSA_WITH_SHA256, ECDSA_WITH_SHA384, SHA256_WITH_RSA } from './signer.ts';
export { type KeyCustody, type KeyReference, type CaPrivateKey, LOCAL_KEY_CUSTODY, isKeyReference, formatKeyReference, parseKeyReference } from './key_custody.ts';
export { type SerialSource } from './serial.ts';
export { toPem, decodeSinglePem, decodeCertificates } from './pem.ts';
export { type VerifiedCsr, parseCsrPem, parseCsrDer } from './csr.ts';
export { createIntermediateCsrPem } from './csr_request.ts';
export { createCsrPem } from './workload_csr.ts';
export { acceptIssuedIntermediate, type IssuedIntermediate } from './issued_intermediate.ts';
export { keyIdOf, certificateFields, encodeTbsCertificate, readIssuedFields, type IssuerTemplate, type IssuedFields } from './certificate_builder.ts';
export { leafValidity } from './profiles.ts';
export { type MadeCa, type MadeIntermediate, createRootCa, createIntermediateCa } from './ca_certificates.ts';
export { type SigningAuthority, type AuthorityMaterial, loadSigningAuthority } from './authority.ts';
export { type IssuedCertificate, type LeafRequest, issueSvid, issueServingCertificate, chainWithBundle } from './leaf.ts';
export { sha256Hex } from './digest.ts';
export { verifyChain, isSelfSigned } from './chain.ts';
export { acceptOperatorRoot, type OperatorRoot } from './operator_root.ts';
export { readSvidSpiffeId, readSigningCertificateId, readPathLenConstraint, type SvidExpectation } from './svid.ts';
export { writeFileAtomic, writePrivateKeyFile, readPrivateKeyFile, readOrCreatePrivateKeyFile, assertKeyTreeProtected, assertOnlyOwnerWrites, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, PRIVATE_DIR_MODE } from './files.ts';
