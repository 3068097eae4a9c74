// `meshca audit export`: the ledger as JSON lines, oldest first, for SIEMs and independent checks,
// from the database (--db) or a running CA's audit API (--server).
import { buildLedgerQuery, MAX_QUERY_LIMIT } from '../../audit/index.ts';
import type { LedgerQuery } from '../../ledger/index.ts';
import { defineCommand } from '../command.ts';
import { asUsageError, formatJsonLine } from './audit_format.ts';
import { AUDIT_SOURCE_SETTINGS, openAuditSource, readPages } from './audit_source.ts';

export const auditExportCommand = defineCommand({
  path: ['audit', 'export'],
  usage: 'meshca audit export [--since 24h] [--until T] [--id …] [--ns …] [--denied] [--db URL] [--keys DIR | --server HOST:PORT --root-cert F (--cert F --key F | --token-file F)] > ledger.jsonl',
  options: { settings: [...AUDIT_SOURCE_SETTINGS, 'since', 'until', 'id', 'ns', 'sa', 'pod', 'serial', 'denied'] },
  async run(v, ctx) {
    let base: LedgerQuery;
    try {
      base = buildLedgerQuery({ id: v.id, ns: v.ns, sa: v.sa, pod: v.pod, serial: v.serial, since: v.since, until: v.until, denied: v.denied, limit: MAX_QUERY_LIMIT, ascending: true }, ctx.clock);
    } catch (err) {
      throw asUsageError(err);
    }
    const source = await openAuditSource(v, ctx);
    try {
      let count = 0;
      // Page by seq so a ledger of any size streams in bounded memory.
      for await (const page of readPages(source, base, Infinity)) {
        ctx.stdout(`${page.map(formatJsonLine).join('\n')}\n`);
        count += page.length;
      }
      ctx.stderr(`exported ${count} records\n`);
      return 0;
    } finally {
      await source.close();
    }
  },
});
