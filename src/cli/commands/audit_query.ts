// `meshca audit query`: who was issued what, when, on whose word: filtered reads of the ledger,
// from the database (--db) or a running CA's audit API (--server).
import { buildLedgerQuery, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT } from '../../audit/index.ts';
import type { LedgerQuery, LedgerRecord } from '../../ledger/index.ts';
import { defineCommand } from '../command.ts';
import { asUsageError, formatCsv, formatJsonLine, formatTable } from './audit_format.ts';
import { AUDIT_SOURCE_SETTINGS, openAuditSource, readPages } from './audit_source.ts';

export const auditQueryCommand = defineCommand({
  path: ['audit', 'query'],
  usage: 'meshca audit query [--id SPIFFE_ID] [--ns NS] [--sa SA] [--pod POD] [--serial HEX] [--since 24h] [--until T] [--denied] [--limit 100] [--json|--csv] [--db URL] [--keys DIR | --server HOST:PORT --root-cert F (--cert F --key F | --token-file F)]',
  options: { settings: [...AUDIT_SOURCE_SETTINGS, 'id', 'ns', 'sa', 'pod', 'serial', 'since', 'until', 'denied', 'limit', 'json', 'csv'], defaults: { limit: DEFAULT_QUERY_LIMIT } },
  async run(v, ctx) {
    let query: LedgerQuery;
    try {
      // More than one page is read page by page below; the filters are checked once here.
      query = buildLedgerQuery({ id: v.id, ns: v.ns, sa: v.sa, pod: v.pod, serial: v.serial, since: v.since, until: v.until, denied: v.denied, limit: Math.min(v.limit, MAX_QUERY_LIMIT) }, ctx.clock);
    } catch (err) {
      throw asUsageError(err);
    }
    const source = await openAuditSource(v, ctx);
    try {
      const records: LedgerRecord[] = [];
      for await (const page of readPages(source, query, v.limit === 0 ? query.limit : v.limit)) records.push(...page);
      if (v.json) ctx.stdout(`[${records.map(formatJsonLine).join(',\n')}]\n`);
      else if (v.csv) ctx.stdout(`${formatCsv(records)}\n`);
      else if (records.length === 0) ctx.stdout('no records match\n');
      else ctx.stdout(`${formatTable(records)}\n`);
      return 0;
    } finally {
      await source.close();
    }
  },
});
