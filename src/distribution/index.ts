// Public face of src/distribution: getting the trust bundle to everyone who must trust it — the
// SPIFFE bundle endpoint and the per-namespace ConfigMap kept by one elected replica. The
// Kubernetes client is loaded only when distribution is on.

import { existsSync } from 'node:fs';
import type { ConfigMapDistributor, ConfigMapDistributorOptions } from './configmaps.ts';
import { IN_CLUSTER_TOKEN } from './names.ts';

export { createBundleRoute, spiffeBundleDocument, DEFAULT_REFRESH_HINT_SECONDS, type SpiffeBundleDocument, type SpiffeBundleKey, type BundleSource } from './bundle_document.ts';
export { BUNDLE_CONFIGMAP_NAME, BUNDLE_CONFIGMAP_KEY, DISTRIBUTOR_LEASE_NAME, LEADER_LEASE_NAME, DEFAULT_LEASE_DURATION_MS, DEFAULT_RESYNC_MS } from './names.ts';
export type { ConfigMapDistributor, ConfigMapDistributorOptions } from './configmaps.ts';
export type { LeaseElector, LeaseOptions } from './lease.ts';
export type { Leadership, LeaderElectionOptions } from './leader.ts';
export type { WebhookCaBundle, WebhookCaBundleOptions } from './webhook_ca_bundle.ts';

/**
 * Starts the ConfigMap distributor when `--distribute-bundle` asks for it (`on`, or `auto` inside
 * a pod); otherwise resolves to undefined without loading the Kubernetes client.
 */
export async function startBundleDistribution(
  mode: 'auto' | 'on' | 'off',
  kubeconfigPath: string | undefined,
  options: Omit<ConfigMapDistributorOptions, 'kubeConfig'>,
): Promise<ConfigMapDistributor | undefined> {
  if (mode === 'off' || (mode === 'auto' && !existsSync(IN_CLUSTER_TOKEN))) return undefined;
  const { loadDistributorKubeConfig, startConfigMapDistributor } = await import('./configmaps.ts');
  return startConfigMapDistributor({ ...options, kubeConfig: loadDistributorKubeConfig(mode, kubeconfigPath) });
}

/**
 * Starts leader election for serve's singleton duties when `--leader-election` asks for it (`on`,
 * or `auto` inside a pod); otherwise resolves to undefined (this replica does them alone) without
 * loading the Kubernetes client.
 */
export async function startLeadership(
  mode: 'auto' | 'on' | 'off',
  kubeconfigPath: string | undefined,
  options: Omit<import('./leader.ts').LeaderElectionOptions, 'kubeConfig'>,
): Promise<import('./leader.ts').Leadership | undefined> {
  if (mode === 'off' || (mode === 'auto' && !existsSync(IN_CLUSTER_TOKEN))) return undefined;
  const [{ loadDistributorKubeConfig }, { startLeaderElection }] = await Promise.all([import('./configmaps.ts'), import('./leader.ts')]);
  return startLeaderElection({ ...options, kubeConfig: loadDistributorKubeConfig(mode, kubeconfigPath) });
}

/** Keeps the injection webhook's caBundle on the trust bundle while this replica leads (loads the Kubernetes client). */
export async function startInjectorCaBundle(
  mode: 'auto' | 'on',
  kubeconfigPath: string | undefined,
  options: Omit<import('./webhook_ca_bundle.ts').WebhookCaBundleOptions, 'kubeConfig'>,
): Promise<import('./webhook_ca_bundle.ts').WebhookCaBundle> {
  const [{ loadDistributorKubeConfig }, { startWebhookCaBundle }] = await Promise.all([import('./configmaps.ts'), import('./webhook_ca_bundle.ts')]);
  return startWebhookCaBundle({ ...options, kubeConfig: loadDistributorKubeConfig(mode, kubeconfigPath) });
}
