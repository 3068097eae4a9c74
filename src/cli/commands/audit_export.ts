// `meshca audit export`: the ledger as JSON lines, oldest first, for SIEMs and independent checks.
import { buildLedgerQuery, MAX_QUERY_LIMIT } from '../../audit/index.ts';
import { openLedger, type LedgerQuery } from '../../ledger/index.ts';
import { defineCommand } from '../command.ts';
import { asUsageError, formatJsonLine } from './audit_format.ts';

export const auditExportCommand = defineCommand({
  path: ['audit', 'export'],
  usage: 'meshca audit export [--since 24h] [--until T] [--id …] [--ns …] [--denied] > ledger.jsonl',
  options: { settings: ['db', 'since', 'until', 'id', 'ns', 'sa', 'pod', 'serial', 'denied'] },
  async run(v, ctx) {
    let base: LedgerQuery;
    try {
      base = buildLedgerQuery({ id: v.id, ns: v.ns, sa: v.sa, pod: v.pod, serial: v.serial, since: v.since, until: v.until, denied: v.denied, limit: MAX_QUERY_LIMIT, ascending: true }, ctx.clock);
    } catch (err) {
      throw asUsageError(err);
    }
    const ledger = await openLedger(v.db, { clock: ctx.clock, mustExist: true });
    try {
      let count = 0;
      // Page by seq so a ledger of any size streams in bounded memory.
      for (let after = 0; ; ) {
        const page = await ledger.query({ ...base, afterSeq: after });
        if (page.length === 0) break;
        ctx.stdout(`${page.map(formatJsonLine).join('\n')}\n`);
        count += page.length;
        after = page.at(-1)!.seq;
      }
      ctx.stderr(`exported ${count} records\n`);
      return 0;
    } finally {
      await ledger.close();
    }
  },
});
