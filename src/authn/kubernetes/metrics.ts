// Prometheus metrics of Kubernetes authentication, registered once per registry (several
// authenticators built on one registry share them instead of failing on a duplicate name).

import { Counter, type Registry } from 'prom-client';

export interface KubeAuthMetrics {
  readonly requests: Counter<'code'>;
  readonly cacheHits: Counter;
  readonly cacheMisses: Counter;
  readonly coalesced: Counter;
  readonly rateLimited: Counter;
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[] = []): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

export function kubeAuthMetrics(registry: Registry): KubeAuthMetrics {
  return {
    requests: counter(registry, 'meshca_tokenreview_requests_total', 'TokenReview calls to the Kubernetes API, by HTTP status (or "error" when unreachable)', ['code']),
    cacheHits: counter(registry, 'meshca_token_cache_hits_total', 'Token authentications answered from the review cache'),
    cacheMisses: counter(registry, 'meshca_token_cache_misses_total', 'Token authentications the review cache could not answer'),
    coalesced: counter(registry, 'meshca_tokenreview_coalesced_total', 'Authentications that shared a TokenReview already in flight for the same token'),
    rateLimited: counter(registry, 'meshca_tokenreview_rate_limited_total', 'TokenReview calls that waited for, or were refused, client-side rate-limit budget'),
  };
}
