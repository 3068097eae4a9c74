// Public face of src/distribution: getting the trust bundle to everyone who must trust it — the
// SPIFFE bundle endpoint and the per-namespace ConfigMap kept by one elected replica.
export { spiffeBundleDocument, createBundleRoute, DEFAULT_REFRESH_HINT_SECONDS, type SpiffeBundleDocument, type SpiffeBundleKey, type BundleSource } from './bundle_document.ts';
export {
  startConfigMapDistributor,
  loadDistributorKubeConfig,
  BUNDLE_CONFIGMAP_NAME,
  BUNDLE_CONFIGMAP_KEY,
  DISTRIBUTOR_LEASE_NAME,
  DEFAULT_LEASE_DURATION_MS,
  DEFAULT_RESYNC_MS,
  type ConfigMapDistributor,
  type ConfigMapDistributorOptions,
} from './configmaps.ts';
export { startLeaseElector, type LeaseElector, type LeaseOptions } from './lease.ts';
