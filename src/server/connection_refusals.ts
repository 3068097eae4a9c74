// What serve says when a TLS port's connection gate refuses connections. Each refusal counts in
// meshca_connections_refused_total and is logged at debug; an operator at the default level also
// gets a warning, at most one a minute, naming the cap, the busiest peer and how many were refused
// since the last warning. Without it, clients behind one address (a NAT, a node-level proxy, the
// bench's 200 agents on 127.0.0.1) retry forever while the CA's log stays silent.

import type { Clock } from '../time/index.ts';
import type { Logger } from '../observability/index.ts';
import type { RefusalReason } from '../transport/index.ts';

/** Warnings about refused connections come at most this often. */
export const REFUSAL_WARNING_INTERVAL_MS = 60_000;

const SETTING_OF: Record<RefusalReason, string> = { total: '--max-connections', 'per-peer': '--max-connections-per-peer' };

/** The onRefused callback for a gated port: counts, logs at debug, warns at most once a minute. */
export function connectionRefusalReporter(opts: {
  readonly port: string;
  readonly log: Logger;
  readonly clock: Clock;
  readonly count: (reason: RefusalReason) => void;
}): (peer: string, reason: RefusalReason) => void {
  const { port, log, clock, count } = opts;
  let lastWarningMs: number | undefined;
  let since = new Map<string, number>(); // `${reason} ${peer}` → refusals since the last warning
  return (peer, reason) => {
    count(reason);
    log.debug({ port, peer, reason }, 'connection refused: at the connection cap');
    const key = `${reason} ${peer}`;
    since.set(key, (since.get(key) ?? 0) + 1);
    const now = clock.now();
    if (lastWarningMs !== undefined && now - lastWarningMs < REFUSAL_WARNING_INTERVAL_MS) return;
    let refused = 0;
    let busiest = { key, n: 0 };
    for (const [k, n] of since) {
      refused += n;
      if (n > busiest.n) busiest = { key: k, n };
    }
    const [busiestReason, busiestPeer] = busiest.key.split(' ') as [RefusalReason, string];
    log.warn(
      { port, refused, reason: busiestReason, peer: busiestPeer, setting: SETTING_OF[busiestReason] },
      `${port}: refused ${refused} connection(s) at the connection cap since the last warning, most from ${busiestPeer} (${SETTING_OF[busiestReason]}); clients behind one address count together — raise the cap if they are legitimate`,
    );
    lastWarningMs = now;
    since = new Map();
  };
}
