// One CA replica's ledger writer for bench/scaling.ts: opens the shared PostgreSQL ledger as a
// `serve` would (its own copy of the CA key directory, so the same ledger key) and, on "go",
// appends issuance records with `inFlight` appends at a time for `durationMs`.

import { openLedgerWriter, type IssuanceEvent } from '../src/ledger/index.ts';
import { HOUR_MS } from '../src/time/index.ts';

interface Go {
  url: string;
  keysDir: string;
  inFlight: number;
  durationMs: number;
  replica: number;
}

function event(replica: number, i: number): IssuanceEvent {
  const now = Date.now();
  return {
    type: 'issuance', timeMs: now, decision: 'granted', reason: 'issued', channel: 'CreateCertificate',
    spiffeId: `spiffe://cluster.local/ns/ns${i % 200}/sa/sa${i % 1000}`, namespace: `ns${i % 200}`, serviceAccount: `sa${i % 1000}`, podName: `pod-${replica}-${i}`,
    authenticator: 'jwks', tokenSha256: 'ab'.repeat(32), serial: `4d${replica.toString(16).padStart(2, '0')}${i.toString(16).padStart(28, '0')}`,
    notBeforeMs: now - 60_000, notAfterMs: now + HOUR_MS, requestedTtlSeconds: 3600, grantedTtlSeconds: 3600,
  };
}

process.once('message', (msg: Go) => {
  void (async () => {
    const ledger = await openLedgerWriter(msg.url, { keysDir: msg.keysDir });
    process.send!({ ready: true });
    await new Promise<void>((resolve) => process.once('message', () => resolve()));
    let n = 0;
    let errors = 0;
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    const stopAt = start + msg.durationMs;
    await Promise.all(
      Array.from({ length: msg.inFlight }, async () => {
        while (performance.now() < stopAt) {
          try {
            await ledger.append(event(msg.replica, n++));
          } catch {
            errors++;
          }
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    await ledger.close();
    process.send!({ appended: n - errors, errors, seconds, cpu: process.cpuUsage(cpu0) });
  })().catch((err: unknown) => process.send!({ error: String((err as Error).stack ?? err) }));
});
