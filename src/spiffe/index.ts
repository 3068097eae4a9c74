// Public face of src/spiffe: SPIFFE ID parsing, validation and the Kubernetes form.
export {
  type SpiffeId,
  parseSpiffeId,
  formatSpiffeId,
  kubernetesSpiffeId,
  kubernetesIdentityOf,
  trustDomainId,
  validateTrustDomain,
  isMemberOf,
  MAX_SPIFFE_ID_LENGTH,
  MAX_TRUST_DOMAIN_LENGTH,
} from './spiffe_id.ts';
