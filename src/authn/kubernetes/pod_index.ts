// A watch-backed cache of the cluster's pods, indexed by (node, namespace, service account), for
// ambient-mode node authorization: "does a pod of this service account run on this node?" is
// answered from memory, never by one API call per request (Istio's NodeAuthorizer keeps the same
// index on an informer: security/pkg/server/ca/node_auth.go). List, then watch from the list's
// resourceVersion; on any end or error, list again after a pause. Keeps only names, never specs.

import { KubeClient, type KubeConfig, type ObjectList, type Pod as V1Pod } from '../../kube/index.ts';
import { describeError } from '../../errors/index.ts';
import type { Logger } from '../../observability/index.ts';
import { SECOND_MS, type Clock, type Timer } from '../../time/index.ts';

/** Pause before listing again after a watch ended or failed. */
export const POD_WATCH_RESTART_MS = SECOND_MS;
/** Every pod of a large cluster in one list (a few KB each). */
const POD_LIST_LIMIT_BYTES = 1024 * 1024 * 1024;

export interface PodFacts {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccount: string;
  /** Empty while the pod is not scheduled. */
  readonly nodeName: string;
}

export interface PodIndex {
  /** False until the first list has been read (and again never: a restart keeps the old view). */
  readonly synced: boolean;
  pod(namespace: string, name: string): PodFacts | undefined;
  /** Is at least one pod of `namespace/serviceAccount` scheduled on `nodeName`? */
  hasServiceAccountOnNode(nodeName: string, namespace: string, serviceAccount: string): boolean;
  stop(): void;
}

function factsOf(pod: V1Pod): PodFacts | undefined {
  const m = pod.metadata;
  if (!m?.name || !m.namespace || !m.uid) return undefined;
  return { namespace: m.namespace, name: m.name, uid: m.uid, serviceAccount: pod.spec?.serviceAccountName || 'default', nodeName: pod.spec?.nodeName ?? '' };
}

const podKey = (ns: string, name: string) => `${ns}/${name}`;
const nodeSaKey = (node: string, ns: string, sa: string) => `${node}/${ns}/${sa}`;

export function startPodIndex(opts: { kubeConfig: KubeConfig; clock: Clock; log: Logger }): PodIndex {
  const { clock, log } = opts;
  const api = new KubeClient(opts.kubeConfig, { clock });
  const pods = new Map<string, PodFacts>();
  /** (node, ns, sa) → how many pods. */
  const counts = new Map<string, number>();
  let synced = false;
  let stopped = false;
  let watch: AbortController | undefined;
  let timer: Timer | undefined;

  const count = (f: PodFacts, delta: number) => {
    if (!f.nodeName) return;
    const k = nodeSaKey(f.nodeName, f.namespace, f.serviceAccount);
    const n = (counts.get(k) ?? 0) + delta;
    if (n > 0) counts.set(k, n);
    else counts.delete(k);
  };
  const put = (f: PodFacts) => {
    const old = pods.get(podKey(f.namespace, f.name));
    if (old) count(old, -1);
    pods.set(podKey(f.namespace, f.name), f);
    count(f, +1);
  };
  const remove = (f: PodFacts) => {
    const old = pods.get(podKey(f.namespace, f.name));
    if (!old) return;
    count(old, -1);
    pods.delete(podKey(f.namespace, f.name));
  };

  const restart = () => {
    if (stopped) return;
    timer?.cancel();
    timer = clock.setTimer(POD_WATCH_RESTART_MS, () => void run());
  };

  const run = async () => {
    if (stopped) return;
    try {
      const list = await api.get<ObjectList<V1Pod>>('/api/v1/pods', { maxBytes: POD_LIST_LIMIT_BYTES });
      pods.clear();
      counts.clear();
      for (const pod of list.items) {
        const f = factsOf(pod);
        if (f) put(f);
      }
      synced = true;
      const resourceVersion = list.metadata?.resourceVersion;
      if (stopped) return;
      watch = await api.watch<V1Pod>(
        '/api/v1/pods',
        { ...(resourceVersion ? { resourceVersion } : {}), allowWatchBookmarks: 'true' },
        (phase: string, obj: V1Pod) => {
          const f = factsOf(obj);
          if (!f) return;
          if (phase === 'ADDED' || phase === 'MODIFIED') put(f);
          else if (phase === 'DELETED') remove(f);
        },
        () => restart(),
      );
    } catch (err) {
      log.warn({ reason: describeError(err) }, 'could not list or watch pods for node authorization; retrying');
      restart();
    }
  };
  void run();

  return {
    get synced() {
      return synced;
    },
    pod: (namespace, name) => pods.get(podKey(namespace, name)),
    hasServiceAccountOnNode: (nodeName, namespace, serviceAccount) => (counts.get(nodeSaKey(nodeName, namespace, serviceAccount)) ?? 0) > 0,
    stop() {
      stopped = true;
      timer?.cancel();
      watch?.abort();
      void api.close();
    },
  };
}
