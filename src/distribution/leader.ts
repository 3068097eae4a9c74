// Leader election for serve's singleton duties: every replica issues, but only the holder of the
// meshca-leader Lease rotates intermediates and keeps the webhook's caBundle. Losing the Lease (a
// failed renewal, a lost 409 race, an unreachable API server) stops the duties at once; a stopped
// leader releases it so another replica takes over without waiting out the lease.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Gauge, type Registry } from 'prom-client';
import type { KubeConfig } from '../kube/index.ts';
import type { Logger } from '../observability/index.ts';
import type { Clock } from '../time/index.ts';
import { startLeaseElector } from './lease.ts';
import { DEFAULT_LEASE_DURATION_MS, LEADER_LEASE_NAME } from './names.ts';

export interface Leadership {
  readonly isLeader: boolean;
  /** Calls `listener(leading)` on every change; returns the unsubscribe. */
  subscribe(listener: (leading: boolean) => void): () => void;
  stop(): Promise<void>;
}

export interface LeaderElectionOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly registry?: Registry;
  readonly identity?: string;
  readonly leaseDurationMs?: number;
  readonly name?: string;
}

export function startLeaderElection(o: LeaderElectionOptions): Leadership {
  const listeners = new Set<(leading: boolean) => void>();
  const gauge = new Gauge({ name: 'meshca_leader', help: '1 while this replica holds the meshca-leader Lease (singleton duties: intermediate rotation, webhook caBundle)', registers: o.registry ? [o.registry] : [], aggregator: 'max' });
  gauge.set(0);
  const leaseDurationMs = o.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
  const changed = (leading: boolean) => {
    gauge.set(leading ? 1 : 0);
    for (const l of listeners) l(leading);
  };
  const elector = startLeaseElector({
    kubeConfig: o.kubeConfig,
    namespace: o.namespace,
    name: o.name ?? LEADER_LEASE_NAME,
    identity: o.identity ?? `${hostname()}-${randomBytes(4).toString('hex')}`,
    leaseDurationMs,
    // client-go renews well inside the lease: a third of it leaves two tries before it lapses.
    retryMs: Math.max(200, Math.floor(leaseDurationMs / 3)),
    clock: o.clock,
    log: o.log,
    duty: 'the leader (intermediate rotation, webhook caBundle)',
    onStartedLeading: () => changed(true),
    onStoppedLeading: () => changed(false),
  });
  return {
    get isLeader() {
      return elector.isLeader;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop: () => elector.stop(),
  };
}
