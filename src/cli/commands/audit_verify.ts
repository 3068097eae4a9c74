// `meshca audit verify`: recompute the hash chain, check the signed checkpoints, and name the first
// record altered, removed or inserted, in the database (--db) or by a running CA (--server). Exits 1
// if the ledger does not verify.
import { join } from 'node:path';
import { headAnchorPath, LEDGER_KEY_FILE, LEDGER_PUBLIC_KEY_FILE, readHeadAnchor, readLedgerPublicKey, type VerifyReport } from '../../ledger/index.ts';
import { defineCommand } from '../command.ts';
import { AUDIT_SOURCE_SETTINGS, openAuditSource } from './audit_source.ts';

const SHOWN_PROBLEMS = 10;

function describeReport(where: string, r: VerifyReport): string {
  const range = r.records === 0 ? 'no records' : `${r.records} records (${r.anchorSeq + 1}–${r.headSeq})`;
  const sigs = r.signaturesChecked ? `${r.checkpointsSigned} of ${r.checkpoints} checkpoints signed by the ledger key` : `${r.checkpoints} checkpoints, signatures NOT checked (no ledger key in --keys)`;
  const anchor = r.anchorSeq > 0 ? `; pruned up to the checkpoint at record ${r.anchorSeq}` : '';
  const uncovered = r.uncoveredRecords > 0 ? `; the last ${r.uncoveredRecords} not yet under a signed checkpoint` : '';
  const held = r.anchoredHead?.held ? `; holds the head anchored in ${r.anchoredHead.file} (record ${r.anchoredHead.seq})` : '';
  if (r.ok) return `ledger ${where} verifies: ${range}, ${sigs}${anchor}${held}${uncovered}; head ${r.headHash}`;
  const lines = [`ledger ${where} does NOT verify: ${r.problems[0]!.message}`];
  for (const p of r.problems.slice(1, SHOWN_PROBLEMS)) lines.push(`  also: ${p.message}`);
  if (r.problems.length > SHOWN_PROBLEMS) lines.push(`  …and ${r.problems.length - SHOWN_PROBLEMS} more`);
  lines.push(`  checked ${range}, ${sigs}${anchor}`);
  return lines.join('\n');
}

export const auditVerifyCommand = defineCommand({
  path: ['audit', 'verify'],
  usage: 'meshca audit verify [--db URL] [--keys DIR] [--json] | meshca audit verify --server HOST:PORT --root-cert F (--cert F --key F | --token-file F) [--json]',
  options: { settings: [...AUDIT_SOURCE_SETTINGS, 'json'] },
  async run(v, ctx) {
    // Over --server the CA checks with its own ledger key and head anchor; here, with those in --keys.
    const publicKey = v.server === undefined ? readLedgerPublicKey(v.keys) : undefined;
    if (v.server === undefined && !publicKey) ctx.stderr(`warning: neither ${join(v.keys, LEDGER_KEY_FILE)} nor ${LEDGER_PUBLIC_KEY_FILE} exists; checkpoint signatures will not be checked\n`);
    // The head anchored outside the database: without it a cut tail cannot be seen.
    const anchorFile = headAnchorPath(v.keys);
    const anchor = v.server === undefined ? readHeadAnchor(anchorFile, publicKey) : undefined;
    if (v.server === undefined && !anchor) ctx.stderr(`warning: ${anchorFile} does not exist; records cut from the tail of the ledger cannot be detected\n`);
    const source = await openAuditSource(v, ctx, { ...(publicKey ? { verifyKeys: [publicKey] } : {}), ...(anchor ? { anchor: { anchor, file: anchorFile } } : {}) });
    try {
      const report = await source.verify();
      if (v.json) ctx.stdout(`${JSON.stringify(report, null, 2)}\n`);
      else ctx.stdout(`${describeReport(source.where, report)}\n`);
      return report.ok ? 0 : 1;
    } finally {
      await source.close();
    }
  },
});
