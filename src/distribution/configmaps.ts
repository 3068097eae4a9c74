// Keeps the ConfigMap meshca-root-cert (key root-cert.pem, Istio's shape) in every namespace equal to
// the trust bundle: created when a namespace appears, updated when the bundle changes, repaired when
// edited or deleted. Only the replica holding the Lease writes. Never touches any other ConfigMap.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Counter, Gauge, type Registry } from 'prom-client';
import { describeError, MeshcaError } from '../errors/index.ts';
import { encodePath, KubeClient, kubeStatusOf, loadInClusterConfig, loadKubeconfigFile, type ConfigMap as V1ConfigMap, type KubeConfig, type Namespace, type ObjectList } from '../kube/index.ts';
import type { Logger } from '../observability/index.ts';
import { SECOND_MS, type Clock, type Timer } from '../time/index.ts';
import { startLeaseElector, type LeaseElector } from './lease.ts';
import { BUNDLE_CONFIGMAP_KEY, BUNDLE_CONFIGMAP_NAME, DEFAULT_LEASE_DURATION_MS, DEFAULT_RESYNC_MS, DISTRIBUTOR_LEASE_NAME } from './names.ts';

const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'meshca' };
const WATCH_RESTART_MS = SECOND_MS;

export interface ConfigMapDistributorOptions {
  readonly kubeConfig: KubeConfig;
  /** Where the Lease lives (the CA's own namespace). */
  readonly namespace: string;
  /** The bundle PEM to publish, read whenever it is needed. */
  readonly bundlePem: () => string;
  /** Calls the listener whenever the bundle changes; returns the unsubscribe. */
  readonly onBundleChange: (listener: () => void) => () => void;
  readonly clock: Clock;
  readonly log: Logger;
  readonly registry?: Registry;
  readonly identity?: string;
  readonly leaseDurationMs?: number;
  readonly resyncMs?: number;
}

export interface ConfigMapDistributor {
  readonly isLeader: boolean;
  /** Makes every namespace's ConfigMap match the bundle now (leader only); resolves when done. */
  resync(): Promise<void>;
  stop(): Promise<void>;
}

export function startConfigMapDistributor(o: ConfigMapDistributorOptions): ConfigMapDistributor {
  const api = new KubeClient(o.kubeConfig, { clock: o.clock });
  const configMaps = (namespace: string) => `/api/v1/namespaces/${encodePath(namespace)}/configmaps`;
  const log = o.log.child({ component: 'bundle-configmaps' });
  const writes = new Counter({ name: 'meshca_bundle_configmap_writes_total', help: 'trust bundle ConfigMap writes by op (create | update) and result', labelNames: ['op', 'result'], registers: o.registry ? [o.registry] : [] });
  const leaderGauge = new Gauge({ name: 'meshca_bundle_distributor_leader', help: '1 while this replica holds the bundle distributor lease', registers: o.registry ? [o.registry] : [], aggregator: 'max' });
  let watches: AbortController[] = [];
  let resyncTimer: Timer | undefined;
  let leading = false;
  let stopped = false;

  /** Creates or fixes one namespace's ConfigMap; a 409 means someone moved first, and the watch brings us back. */
  const ensure = async (namespace: string, seen?: V1ConfigMap): Promise<void> => {
    if (!leading) return;
    const want = o.bundlePem();
    let current = seen;
    if (!current) {
      try {
        current = await api.get<V1ConfigMap>(`${configMaps(namespace)}/${BUNDLE_CONFIGMAP_NAME}`);
      } catch (err) {
        if (kubeStatusOf(err) !== 404) throw err;
      }
    }
    if (!current) {
      try {
        await api.create(configMaps(namespace), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: BUNDLE_CONFIGMAP_NAME, namespace, labels: MANAGED_BY }, data: { [BUNDLE_CONFIGMAP_KEY]: want } });
        writes.inc({ op: 'create', result: 'ok' });
        log.info({ namespace }, 'created the trust bundle ConfigMap');
      } catch (err) {
        const code = kubeStatusOf(err);
        writes.inc({ op: 'create', result: String(code ?? 'error') });
        // 404: the namespace is going away; 409: it appeared meanwhile (the watch will check it).
        if (code !== 404 && code !== 409) throw err;
      }
      return;
    }
    const data = current.data ?? {};
    if (data[BUNDLE_CONFIGMAP_KEY] === want && Object.keys(data).length === 1) return;
    try {
      await api.replace(`${configMaps(namespace)}/${BUNDLE_CONFIGMAP_NAME}`, {
        ...current,
        metadata: { ...current.metadata, labels: { ...(current.metadata?.labels ?? {}), ...MANAGED_BY } },
        data: { [BUNDLE_CONFIGMAP_KEY]: want },
      });
      writes.inc({ op: 'update', result: 'ok' });
      log.info({ namespace }, 'updated the trust bundle ConfigMap');
    } catch (err) {
      const code = kubeStatusOf(err);
      writes.inc({ op: 'update', result: String(code ?? 'error') });
      if (code !== 404 && code !== 409) throw err;
    }
  };

  const ensureLogged = (namespace: string, seen?: V1ConfigMap) =>
    ensure(namespace, seen).catch((err) => log.warn({ namespace, reason: describeError(err) }, 'could not write the trust bundle ConfigMap; retrying at the next resync'));

  const resync = async () => {
    if (!leading) return;
    try {
      const [namespaces, maps] = await Promise.all([
        api.get<ObjectList<Namespace>>('/api/v1/namespaces'),
        api.get<ObjectList<V1ConfigMap>>('/api/v1/configmaps', { query: { fieldSelector: `metadata.name=${BUNDLE_CONFIGMAP_NAME}` } }),
      ]);
      const byNs = new Map(maps.items.map((m) => [m.metadata?.namespace ?? '', m]));
      await Promise.all(
        namespaces.items
          .filter((ns) => ns.status?.phase !== 'Terminating')
          .map((ns) => ensureLogged(ns.metadata!.name!, byNs.get(ns.metadata!.name!) ?? undefined)),
      );
    } catch (err) {
      log.warn({ reason: describeError(err) }, 'could not list namespaces for the trust bundle; retrying at the next resync');
    }
  };

  const watch = async (path: string, query: Record<string, string>, onEvent: (phase: string, obj: { metadata?: { name?: string; namespace?: string } } & V1ConfigMap) => void) => {
    if (!leading || stopped) return;
    const restart = () => {
      if (!leading || stopped) return;
      o.clock.setTimer(WATCH_RESTART_MS, () => void watch(path, query, onEvent));
    };
    try {
      const controller = await api.watch(path, query, onEvent, () => restart());
      // Leading may have stopped while the watch was being opened.
      if (!leading || stopped) controller.abort();
      else watches.push(controller);
    } catch (err) {
      log.debug({ path, reason: describeError(err) }, 'watch failed; restarting');
      restart();
    }
  };

  const startLeading = () => {
    leading = true;
    leaderGauge.set(1);
    void resync();
    void watch('/api/v1/namespaces', {}, (phase, ns) => {
      if (phase === 'ADDED' && ns.metadata?.name) void ensureLogged(ns.metadata.name);
    });
    void watch('/api/v1/configmaps', { fieldSelector: `metadata.name=${BUNDLE_CONFIGMAP_NAME}` }, (phase, cm) => {
      const ns = cm.metadata?.namespace;
      if (!ns) return;
      if (phase === 'DELETED') void ensureLogged(ns);
      else if (phase === 'MODIFIED' || phase === 'ADDED') void ensureLogged(ns, cm);
    });
    resyncTimer = o.clock.every(o.resyncMs ?? DEFAULT_RESYNC_MS, () => void resync());
  };

  const stopLeading = () => {
    leading = false;
    leaderGauge.set(0);
    resyncTimer?.cancel();
    for (const w of watches.splice(0)) w.abort();
  };

  const unsubscribe = o.onBundleChange(() => void resync());
  const leaseDurationMs = o.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
  const elector: LeaseElector = startLeaseElector({
    kubeConfig: o.kubeConfig,
    namespace: o.namespace,
    name: DISTRIBUTOR_LEASE_NAME,
    identity: o.identity ?? `${hostname()}-${randomBytes(4).toString('hex')}`,
    leaseDurationMs,
    retryMs: Math.max(200, Math.floor(leaseDurationMs / 3)),
    clock: o.clock,
    log,
    onStartedLeading: startLeading,
    onStoppedLeading: stopLeading,
  });

  return {
    get isLeader() {
      return elector.isLeader;
    },
    resync,
    async stop() {
      stopped = true;
      unsubscribe();
      await elector.stop();
      stopLeading();
      await api.close();
    },
  };
}

/**
 * The Kubernetes client configuration for distribution (the caller has decided it is on): `on`
 * uses --kubeconfig (or the in-cluster configuration), `auto` the in-cluster configuration.
 */
export function loadDistributorKubeConfig(mode: 'auto' | 'on', kubeconfigPath: string | undefined): KubeConfig {
  try {
    return kubeconfigPath && mode === 'on' ? loadKubeconfigFile(kubeconfigPath) : loadInClusterConfig();
  } catch (err) {
    throw new MeshcaError('BAD_CONFIG', `--distribute-bundle: cannot load ${kubeconfigPath ?? 'the in-cluster Kubernetes configuration'}: ${describeError(err)}`, { cause: err });
  }
}
