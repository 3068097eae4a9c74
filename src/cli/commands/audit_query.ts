// `meshca audit query`: who was issued what, when, on whose word: filtered reads of the ledger.
import { buildLedgerQuery, DEFAULT_QUERY_LIMIT } from '../../audit/index.ts';
import { openLedger, type LedgerQuery } from '../../ledger/index.ts';
import { defineCommand } from '../command.ts';
import { asUsageError, formatCsv, formatJsonLine, formatTable } from './audit_format.ts';

export const auditQueryCommand = defineCommand({
  path: ['audit', 'query'],
  usage: 'meshca audit query [--id SPIFFE_ID] [--ns NS] [--sa SA] [--pod POD] [--serial HEX] [--since 24h] [--until T] [--denied] [--limit 100] [--json|--csv]',
  options: { settings: ['db', 'id', 'ns', 'sa', 'pod', 'serial', 'since', 'until', 'denied', 'limit', 'json', 'csv'], defaults: { limit: DEFAULT_QUERY_LIMIT } },
  async run(v, ctx) {
    let query: LedgerQuery;
    try {
      query = buildLedgerQuery({ id: v.id, ns: v.ns, sa: v.sa, pod: v.pod, serial: v.serial, since: v.since, until: v.until, denied: v.denied, limit: v.limit }, ctx.clock);
    } catch (err) {
      throw asUsageError(err);
    }
    const ledger = await openLedger(v.db, { clock: ctx.clock, mustExist: true });
    try {
      const records = await ledger.query(query);
      if (v.json) ctx.stdout(`[${records.map(formatJsonLine).join(',\n')}]\n`);
      else if (v.csv) ctx.stdout(`${formatCsv(records)}\n`);
      else if (records.length === 0) ctx.stdout('no records match\n');
      else ctx.stdout(`${formatTable(records)}\n`);
      return 0;
    } finally {
      await ledger.close();
    }
  },
});
