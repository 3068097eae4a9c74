// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does: create or
// take over an expired lease, renew before it lapses, and stop leading the moment a renewal fails
// or loses a 409 race. Only ever writes the one Lease it is given.

import { encodePath, KubeClient, kubeStatusOf, microTime, type KubeConfig, type Lease as V1Lease } from '../kube/index.ts';
import { describeError } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import type { Clock } from '../time/index.ts';

export interface LeaseOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  /** Unique per replica (pod name + random suffix). */
  readonly identity: string;
  readonly leaseDurationMs: number;
  /** How often to renew / try to acquire; well under the duration (client-go: duration/3 or less). */
  readonly retryMs: number;
  readonly clock: Clock;
  readonly log: Logger;
  readonly onStartedLeading: () => void;
  readonly onStoppedLeading: () => void;
  /** What leading means, for the log (default: the trust bundle distributor). */
  readonly duty?: string;
}

export interface LeaseElector {
  readonly isLeader: boolean;
  /** One acquire-or-renew attempt (the loop calls this every retryMs). */
  tick(): Promise<void>;
  /** Stops; a leader releases the lease so another replica takes over at once. */
  stop(): Promise<void>;
}

function msOf(t: string | undefined): number {
  return t === undefined ? 0 : new Date(t).getTime();
}

export function startLeaseElector(o: LeaseOptions): LeaseElector {
  const api = new KubeClient(o.kubeConfig, { clock: o.clock });
  const collection = `/apis/coordination.k8s.io/v1/namespaces/${encodePath(o.namespace)}/leases`;
  const path = `${collection}/${encodePath(o.name)}`;
  let leader = false;
  let stopped = false;
  const durationSeconds = Math.max(1, Math.ceil(o.leaseDurationMs / 1000));

  const setLeader = (now: boolean) => {
    if (now === leader) return;
    leader = now;
    const duty = o.duty ?? 'the trust bundle distributor';
    o.log.info({ lease: `${o.namespace}/${o.name}`, identity: o.identity }, now ? `became ${duty} (lease acquired)` : `no longer ${duty}`);
    if (now) o.onStartedLeading();
    else o.onStoppedLeading();
  };

  const spec = (prev: V1Lease | undefined, nowMs: number) => {
    const keep = prev?.spec?.holderIdentity === o.identity;
    return {
      holderIdentity: o.identity,
      leaseDurationSeconds: durationSeconds,
      acquireTime: keep && prev?.spec?.acquireTime ? microTime(msOf(prev.spec.acquireTime)) : microTime(nowMs),
      renewTime: microTime(nowMs),
      leaseTransitions: (prev?.spec?.leaseTransitions ?? 0) + (keep ? 0 : 1),
    };
  };

  const tick = async () => {
    if (stopped) return;
    const nowMs = o.clock.now();
    try {
      let current: V1Lease | undefined;
      try {
        current = await api.get<V1Lease>(path);
      } catch (err) {
        if (kubeStatusOf(err) !== 404) throw err;
      }
      if (!current) {
        await api.create(collection, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: o.name, namespace: o.namespace }, spec: { ...spec(undefined, nowMs), leaseTransitions: 0 } });
        setLeader(true);
        return;
      }
      const holder = current.spec?.holderIdentity;
      const expiresMs = msOf(current.spec?.renewTime) + (current.spec?.leaseDurationSeconds ?? durationSeconds) * 1000;
      if (holder && holder !== o.identity && expiresMs > nowMs) {
        setLeader(false);
        return;
      }
      // Ours to renew, free, or expired: replace it, conditional on the version we read.
      await api.replace(path, { ...current, spec: spec(current, nowMs) });
      setLeader(true);
    } catch (err) {
      // A lost race (409) or an unreachable API: whoever renewed last leads; stop acting now.
      if (kubeStatusOf(err) !== 409) o.log.warn({ reason: describeError(err), lease: `${o.namespace}/${o.name}` }, 'could not acquire or renew the lease');
      setLeader(false);
    }
  };

  const timer = o.clock.every(o.retryMs, () => void tick());
  void tick();

  return {
    get isLeader() {
      return leader;
    },
    tick,
    async stop() {
      stopped = true;
      timer.cancel();
      if (!leader) return;
      setLeader(false);
      try {
        const current = await api.get<V1Lease>(path);
        if (current.spec?.holderIdentity === o.identity) {
          // Released like client-go's ReleaseOnCancel: an expired renewTime lets others take it now.
          await api.replace(path, { ...current, spec: { ...current.spec, holderIdentity: '', renewTime: microTime(0) } });
        }
      } catch {
        // It expires on its own.
      } finally {
        void api.close();
      }
    },
  };
}
