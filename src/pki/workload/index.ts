// What a workload's agent needs from pki: its key and CSR, the chain it gets back read and checked,
// files written. On its own so that the agent, in every pod, loads none of the ASN.1 libraries the
// CA's certificate builder uses (test/architecture checks it). The same functions as src/pki's.

export { type KeyType } from '../settings/index.ts';
export { generateKeyPair } from '../key_types.ts';
export { createCsrPem } from '../workload_csr.ts';
export { toPem, decodeCertificates } from '../pem.ts';
export { verifyChain, isSelfSigned } from '../chain.ts';
export { readSvidSpiffeId, readSigningCertificateId } from '../svid.ts';
export { writeFileAtomic, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE } from '../files.ts';
