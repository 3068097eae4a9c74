// `meshca audit prune`: apply --retain. Removes records older than the retention up to a signed
// checkpoint, which stays as the chain's anchor so `audit verify` still passes.
import { MeshcaError } from '../../errors/index.ts';
import { ledgerUrlFor, openLedger } from '../../ledger/index.ts';
import { formatDuration } from '../../time/index.ts';
import { defineCommand, report } from '../command.ts';

export const auditPruneCommand = defineCommand({
  path: ['audit', 'prune'],
  usage: 'meshca audit prune --retain 400d [--db URL] [--keys DIR] [--json]',
  options: { settings: ['db', 'keys', 'retain', 'json'], required: ['retain'] },
  async run(v, ctx) {
    if (!v.retain) throw new MeshcaError('BAD_CONFIG', '--retain must be longer than 0s (0 keeps everything)');
    const beforeMs = ctx.clock.now() - v.retain;
    // The ledger key signs the checkpoint the chain will start from.
    const ledger = await openLedger(ledgerUrlFor(v.db, v.keys), { clock: ctx.clock, keysDir: v.keys, mustExist: true });
    try {
      const result = await ledger.prune(beforeMs);
      const before = new Date(beforeMs).toISOString();
      const human =
        result.removed === 0
          ? `nothing to prune: no signed checkpoint covers only records older than ${before} (retain ${formatDuration(v.retain)})`
          : `pruned ${result.removed} records older than ${before}; the chain now starts after the signed checkpoint at record ${result.anchorSeq}`;
      report(ctx, v, human, { ...result, before });
      return 0;
    } finally {
      await ledger.close();
    }
  },
});
