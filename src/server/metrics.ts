// The CA server's Prometheus metrics. Label values are bounded (outcome codes, cert roles).

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Clock } from '../time/index.ts';

export interface CaMetrics {
  readonly issuances: Counter<'outcome'>;
  readonly issueDuration: Histogram<'outcome'>;
  readonly caCertExpiry: Gauge<'cert'>;
  readonly connectionsRefused: Counter<'reason'>;
}

export function createCaMetrics(registry: Registry): CaMetrics {
  return {
    issuances: new Counter({
      name: 'meshca_issuances_total',
      help: 'CreateCertificate (and CA-direct SDS) requests by outcome: ok or the gRPC status name',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    issueDuration: new Histogram({
      name: 'meshca_issue_duration_seconds',
      help: 'Time to answer an issuance request, authentication and ledger included',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    caCertExpiry: new Gauge({
      name: 'meshca_ca_cert_expiry_timestamp_seconds',
      help: 'notAfter of the CA certificates in use (cert = root | intermediate | serving)',
      labelNames: ['cert'],
      registers: [registry],
      // --workers: each worker has its own serving certificate; the soonest expiry is the one to watch.
      aggregator: 'min',
    }),
    connectionsRefused: new Counter({
      name: 'meshca_connections_refused_total',
      help: 'gRPC connections closed on accept because a cap was reached (reason = total | per-peer)',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
}

/** Ledger appends by result (ok | error), for the dashboard's ledger latency and the "ledger unavailable" alert. */
export function ledgerAppendObserver(registry: Registry): (seconds: number, ok: boolean) => void {
  const appends = new Histogram({
    name: 'meshca_ledger_append_duration_seconds',
    help: 'Time to record one ledger event (an issuance is answered only after its record), by result: ok or error',
    labelNames: ['result'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return (seconds, ok) => appends.observe({ result: ok ? 'ok' : 'error' }, seconds);
}

/**
 * Age of the ledger's newest signed checkpoint (any replica's), read at scrape time. Absent until
 * one exists or while the ledger cannot be read (the append metric's errors alert on that).
 */
export function ledgerCheckpointAgeGauge(registry: Registry, clock: Clock, newestCheckpointTimeMs: () => Promise<number | undefined>): void {
  new Gauge({
    name: 'meshca_ledger_checkpoint_age_seconds',
    help: "Seconds since the ledger's newest signed checkpoint; it should stay under 2 x --checkpoint-interval while records are appended",
    registers: [registry],
    async collect() {
      this.reset();
      const timeMs = await newestCheckpointTimeMs().catch(() => undefined);
      if (timeMs !== undefined) this.set(Math.max(0, clock.now() - timeMs) / 1000);
    },
  });
}
