// Ledger retention in a running CA: prunes records older than --retain to the newest checkpoint
// before that age (which becomes the chain's anchor), at start and then every few hours.
// Never prunes when retention is 0, and a failed prune only logs: the ledger stays as it was.

import type { Logger } from '../observability/index.ts';
import { HOUR_MS, formatDuration, type Clock } from '../time/index.ts';
import type { Ledger } from './ledger.ts';

export const RETENTION_INTERVAL_MS = 6 * HOUR_MS;
/** Let the server finish starting before the first prune. */
const FIRST_PRUNE_DELAY_MS = 60_000;

export function startRetention(ledger: Pick<Ledger, 'prune'>, retainMs: number, clock: Clock, log: Pick<Logger, 'info' | 'error'>): { stop(): void } {
  if (retainMs <= 0) return { stop() {} };
  let running: Promise<void> | undefined;
  const prune = () => {
    running ??= ledger
      .prune(clock.now() - retainMs)
      .then((r) => {
        if (r.removed > 0) log.info({ removed: r.removed, anchorSeq: r.anchorSeq, retain: formatDuration(retainMs) }, 'pruned ledger records past retention');
      })
      .catch((err: unknown) => log.error({ err }, 'ledger retention prune failed; records are kept'))
      .finally(() => {
        running = undefined;
      });
  };
  const first = clock.setTimer(FIRST_PRUNE_DELAY_MS, prune);
  const every = clock.every(RETENTION_INTERVAL_MS, prune);
  return {
    stop() {
      first.cancel();
      every.cancel();
    },
  };
}
