// Durability end to end: `meshca serve` as a real process, clients issuing over TLS, then SIGKILL
// mid-load. Every certificate a client received must have its ledger record; the chain must verify.

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLedger, readLedgerPublicKey } from '../../src/ledger/index.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { runMeshca, startServeProcess, tempDir } from '../helpers/serve.ts';
import { BACKENDS } from './backends.ts';

const CLIENTS = 16;
const LOAD_MS = 500;
const MIN_RECEIVED = 25;

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip !== undefined)(`SIGKILL under load on ${backend.name}`, () => {
    it('leaves no certificate a client received without a ledger record', async () => {
      const db = await backend.fresh();
      const dir = tempDir();
      const keys = join(dir.path, 'keys');
      const serve = await startServeProcess(['--keys', keys, '--db', db.url]);
      let killed = false;
      try {
        const rootPem = readFileSync(join(keys, 'root-cert.pem'), 'utf8');
        const mint = await runMeshca(['token', 'mint', '--keys', keys, '--ns', 'load', '--sa', 'client']);
        expect(mint.code).toBe(0);
        const token = mint.stdout.trim();
        const { csrPem } = opensslCsr();

        const received: string[] = [];
        const clients = Array.from({ length: CLIENTS }, () => new CaClient({ address: serve.grpcAddress, rootPem }));
        const stopAt = Date.now() + LOAD_MS;
        const load = clients.map(async (client) => {
          while (!killed || Date.now() < stopAt) {
            try {
              const { certChain } = await client.createCertificate({ csr: csrPem, token, deadlineMs: 5000 });
              received.push(new X509Certificate(certChain[0]!).serialNumber.toLowerCase());
            } catch {
              if (killed) return; // the CA is gone: what we hold is what counts
            }
          }
        });
        // Kill mid-load once the load has run LOAD_MS and at least MIN_RECEIVED certificates are out
        // (a busy machine issues fewer per second; the kill must still land on a loaded CA).
        const loadedBy = Date.now() + 15_000;
        while (Date.now() < stopAt || (received.length < MIN_RECEIVED && Date.now() < loadedBy)) await new Promise((r) => setTimeout(r, 50));
        serve.child.kill('SIGKILL');
        killed = true;
        await serve.exited;
        await Promise.all(load);
        for (const c of clients) c.close();

        expect(received.length).toBeGreaterThan(20);
        const ledger = await openLedger(db.url, { mustExist: true, verifyKeys: [readLedgerPublicKey(keys)!] });
        try {
          const missing: string[] = [];
          for (const serial of received) {
            const [rec] = await ledger.query({ serial, limit: 1 });
            if (!rec || rec.event.type !== 'issuance' || rec.event.decision !== 'granted') missing.push(serial);
          }
          expect(missing).toEqual([]);
          const report = await ledger.verify();
          expect(report.problems).toEqual([]);
          expect(report.records).toBeGreaterThanOrEqual(received.length);
        } finally {
          await ledger.close();
        }
      } finally {
        if (!killed) serve.child.kill('SIGKILL');
        await db.cleanup();
        dir.cleanup();
      }
    });
  });
}
