// Public face of src/kube: a small Kubernetes REST client (kubeconfig or in-cluster configuration,
// JSON calls and watches over a keep-alive pool). @kubernetes/client-node is loaded only for the
// authentication this does not do itself (exec plugins, auth providers, proxies).

export { loadDefaultKubeConfig, loadInClusterConfig, loadKubeconfigFile, loadKubeconfigText, SERVICE_ACCOUNT_DIR, TOKEN_FILE_REREAD_MS, type KubeAuth, type KubeConfig, type KubeTls } from './config.ts';
export { DEFAULT_RESPONSE_LIMIT_BYTES, encodePath, KubeApiError, KubeClient, kubeStatusOf, WATCH_EVENT_LIMIT_BYTES, WATCH_IDLE_TIMEOUT_MS, type HttpMethod, type Query, type RequestOptions, type WatchPhase } from './client.ts';
export { API_POOL_MAX_AGE_MS, createApiConnectionPool, type ApiConnectionPool, type PooledAgent } from './pool.ts';
export { microTime, type ConfigMap, type Lease, type MutatingWebhookConfiguration, type Namespace, type ObjectList, type ObjectMeta, type Pod, type Secret, type TokenReview, type TokenReviewStatus } from './types.ts';
