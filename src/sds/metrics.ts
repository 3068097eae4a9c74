// Counters for SDS: streams open, pushes, ACKs, NACKs. Prometheus when a registry is given, and
// always a plain snapshot for health pages and tests. Never labels by secret content.

import { Counter, Gauge, type Registry } from 'prom-client';

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
  pushed(): void;
  acked(): void;
  nacked(): void;
  fetched(): void;
  snapshot(): SdsCounters;
}

export function createSdsMetrics(registry?: Registry): SdsMetrics {
  const counts = { streamsOpen: 0, pushes: 0, acks: 0, nacks: 0, fetches: 0 };
  const registers = registry ? [registry] : [];
  const open = new Gauge({ name: 'meshca_sds_streams_open', help: 'SDS streams open', labelNames: ['kind'], registers });
  const pushes = new Counter({ name: 'meshca_sds_pushes_total', help: 'SDS responses sent on streams', registers });
  const acks = new Counter({ name: 'meshca_sds_acks_total', help: 'SDS responses the proxy accepted (ACK)', registers });
  const nacks = new Counter({ name: 'meshca_sds_nacks_total', help: 'SDS responses the proxy rejected (NACK)', registers });
  const fetches = new Counter({ name: 'meshca_sds_fetches_total', help: 'FetchSecrets calls answered', registers });
  return {
    streamOpened(kind) {
      counts.streamsOpen += 1;
      open.inc({ kind });
    },
    streamClosed(kind) {
      counts.streamsOpen -= 1;
      open.dec({ kind });
    },
    pushed() {
      counts.pushes += 1;
      pushes.inc();
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
