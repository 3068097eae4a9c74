// Counters for SDS: streams open, pushes, ACKs, NACKs, and how long a secret change takes to reach
// each open stream. Prometheus when a registry is given, and
// always a plain snapshot for health pages and tests. Never labels by secret content.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { systemClock, type Clock } from '../time/index.ts';

export type SdsStreamKind = 'sotw' | 'delta';

export interface SdsCounters {
  readonly streamsOpen: number;
  readonly pushes: number;
  readonly acks: number;
  readonly nacks: number;
  readonly fetches: number;
}

export interface SdsMetrics {
  streamOpened(kind: SdsStreamKind): void;
  streamClosed(kind: SdsStreamKind): void;
  /** A response written on a stream; `changeAtMs` when a secret change caused it (SecretChange.atMs). */
  pushed(changeAtMs?: number): void;
  acked(): void;
  nacked(): void;
  fetched(): void;
  snapshot(): SdsCounters;
}

export function createSdsMetrics(registry?: Registry, clock: Clock = systemClock): SdsMetrics {
  const counts = { streamsOpen: 0, pushes: 0, acks: 0, nacks: 0, fetches: 0 };
  const registers = registry ? [registry] : [];
  const open = new Gauge({ name: 'meshca_sds_streams_open', help: 'SDS streams open', labelNames: ['kind'], registers });
  const pushes = new Counter({ name: 'meshca_sds_pushes_total', help: 'SDS responses sent on streams', registers });
  const acks = new Counter({ name: 'meshca_sds_acks_total', help: 'SDS responses the proxy accepted (ACK)', registers });
  const nacks = new Counter({ name: 'meshca_sds_nacks_total', help: 'SDS responses the proxy rejected (NACK)', registers });
  const fetches = new Counter({ name: 'meshca_sds_fetches_total', help: 'FetchSecrets calls answered', registers });
  const pushDuration = new Histogram({
    name: 'meshca_sds_push_duration_seconds',
    help: 'Time from a secret change in the store to the response written on each open stream',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  return {
    streamOpened(kind) {
      counts.streamsOpen += 1;
      open.inc({ kind });
    },
    streamClosed(kind) {
      counts.streamsOpen -= 1;
      open.dec({ kind });
    },
    pushed(changeAtMs) {
      counts.pushes += 1;
      pushes.inc();
      if (changeAtMs !== undefined) pushDuration.observe(Math.max(0, clock.now() - changeAtMs) / 1000);
    },
    acked() {
      counts.acks += 1;
      acks.inc();
    },
    nacked() {
      counts.nacks += 1;
      nacks.inc();
    },
    fetched() {
      counts.fetches += 1;
      fetches.inc();
    },
    snapshot: () => ({ ...counts }),
  };
}
