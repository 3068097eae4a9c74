// Public face of src/spiffe: SPIFFE ID parsing, validation and the Kubernetes form.
export {
  type SpiffeId,
  parseSpiffeId,
  formatSpiffeId,
  kubernetesSpiffeId,
  kubernetesIdentityOf,
  isKubernetesNamespace,
  isKubernetesServiceAccount,
  validateTrustDomain,
} from './spiffe_id.ts';
