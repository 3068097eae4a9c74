// `audit verify`: recomputes the hash chain from its anchor, checks every checkpoint's head and
// signature, and names the first record altered, removed or inserted. Reads only; never repairs.

import type { KeyObject } from 'node:crypto';
import { recordHash } from './canonical.ts';
import type { LedgerEvent } from './events.ts';
import type { VerifyProblem, VerifyProblemKind, VerifyReport } from './ledger.ts';
import { isCheckpointSignedBy, ledgerKeyIdOf } from './ledger_key.ts';
import { indexedColumnsOf, sameColumns, type LedgerStore, type StoredCheckpoint, type StoredRecord } from './store.ts';
import { anchorProblem, META_LEDGER_ID, shortId, type HeadAnchor } from './binding.ts';

/** The head anchored outside the database, and the file it came from. */
export interface AnchorCheck {
  readonly anchor: HeadAnchor;
  readonly file: string;
}

const PAGE = 5000;
/** After this many problems the rest is noise; the first ones say where to look. */
const MAX_PROBLEMS = 100;

function when(cp: StoredCheckpoint): string {
  return new Date(cp.timeMs).toISOString();
}

function columnsMatch(r: StoredRecord): boolean {
  try {
    return sameColumns(indexedColumnsOf(JSON.parse(r.eventJson) as LedgerEvent), r);
  } catch {
    return false;
  }
}

export async function verifyHashChain(store: LedgerStore, keys: readonly KeyObject[], external?: AnchorCheck): Promise<VerifyReport> {
  const anchor = await store.anchor();
  const checkpoints = await store.checkpoints();
  const cpBySeq = new Map(checkpoints.map((c) => [c.seq, c]));
  const problems: VerifyProblem[] = [];
  const report = (kind: VerifyProblemKind, seq: number, message: string): void => {
    if (problems.length < MAX_PROBLEMS) problems.push({ kind, seq, message });
  };

  // Signatures: a checkpoint is only evidence if the ledger key made it.
  const keyById = new Map(keys.map((k) => [ledgerKeyIdOf(k), k]));
  let checkpointsSigned = 0;
  if (keys.length > 0) {
    for (const cp of checkpoints) {
      const key = keyById.get(cp.keyId);
      if (!key) report('checkpoint', cp.seq, `checkpoint at record ${cp.seq} (${when(cp)}) is signed by an unknown key ${cp.keyId.slice(0, 16)}…`);
      else if (!isCheckpointSignedBy(cp, key)) report('checkpoint', cp.seq, `checkpoint at record ${cp.seq} (${when(cp)}) has a bad signature: it was forged or altered`);
      else checkpointsSigned++;
    }
  }
  if (anchor.seq > 0) {
    const cp = cpBySeq.get(anchor.seq);
    if (!cp) report('anchor', anchor.seq, `the chain starts after record ${anchor.seq}, but no signed checkpoint at ${anchor.seq} vouches for that start`);
    else if (cp.headHash !== anchor.hash) report('anchor', anchor.seq, `the chain's starting hash differs from the checkpoint at record ${anchor.seq}`);
  }

  let expectedSeq = anchor.seq + 1;
  // The chain as recomputed purely from content: what checkpoints must match.
  let recomputed = anchor.hash;
  // The hash the next record should link to, resynchronised on stored hashes after a problem so
  // one tampered record is named once instead of poisoning everything after it.
  let linkTarget = anchor.hash;
  let linkTargetBefore = anchor.hash;
  // Records inserted (positive) or removed (negative) with renumbering so far.
  let shift = 0;
  let records = 0;
  let headSeq = anchor.seq;
  let headHash = anchor.hash;

  for (let page = await store.scan(anchor.seq, PAGE); page.length > 0; page = await store.scan(headSeq, PAGE)) {
    for (const r of page) {
      records++;
      let checkLink = true;
      if (r.seq > expectedSeq) {
        const range = r.seq - 1 === expectedSeq ? `record ${expectedSeq} was` : `records ${expectedSeq}–${r.seq - 1} were`;
        report('removed', expectedSeq, `${range} removed: the chain jumps from ${expectedSeq - 1} to ${r.seq}`);
        checkLink = false;
      }
      let hashOk = recordHash(r.seq - shift, r.prevHash, r.eventJson) === r.hash;
      if (!hashOk && recordHash(r.seq - shift - 1, r.prevHash, r.eventJson) === r.hash) {
        // r is the original record one place earlier: the record now before it was inserted.
        shift++;
        hashOk = true;
        const inserted = r.seq - 1;
        const last = problems.at(-1);
        const message = `record ${inserted} was inserted: record ${r.seq} only verifies as the original record ${r.seq - shift}`;
        if (last?.seq === inserted) problems[problems.length - 1] = { kind: 'inserted', seq: inserted, message };
        else report('inserted', inserted, message);
        linkTarget = linkTargetBefore;
      } else if (!hashOk && recordHash(r.seq - shift + 1, r.prevHash, r.eventJson) === r.hash) {
        shift--;
        hashOk = true;
        report('removed', r.seq, `record ${r.seq} was removed and the records after it renumbered: record ${r.seq} verifies only as ${r.seq + 1}`);
        checkLink = false;
      }
      if (!hashOk) {
        report('altered', r.seq, `record ${r.seq} was altered (or forged): its content no longer matches its hash`);
      } else {
        if (!columnsMatch(r)) report('altered', r.seq, `record ${r.seq} was altered: its indexed columns no longer match its hashed content`);
        if (checkLink && r.prevHash !== linkTarget && problems.at(-1)?.seq !== r.seq - 1) {
          const kind = r.seq - 1 <= anchor.seq ? 'anchor' : 'altered';
          report(kind, r.seq - 1, `record ${r.seq - 1} was altered and re-hashed: record ${r.seq} no longer links to it`);
        }
      }
      recomputed = recordHash(r.seq, recomputed, r.eventJson);
      const cp = cpBySeq.get(r.seq);
      if (cp && cp.headHash !== recomputed) {
        report('checkpoint', r.seq, `the checkpoint at record ${r.seq} (${when(cp)}) does not match the chain: records up to ${r.seq} were changed after it was signed`);
      }
      linkTargetBefore = linkTarget;
      linkTarget = r.hash;
      expectedSeq = r.seq + 1;
      headSeq = r.seq;
      headHash = r.hash;
    }
  }

  let lastCovered = anchor.seq;
  for (const cp of checkpoints) {
    if (cp.seq <= headSeq) lastCovered = Math.max(lastCovered, cp.seq);
  }
  const beyond = checkpoints.filter((c) => c.seq > headSeq).at(-1);
  if (beyond) {
    report('removed', headSeq + 1, `records ${headSeq + 1}–${beyond.seq} were removed: the checkpoint of ${when(beyond)} covers ${beyond.seq} records but the ledger ends at ${headSeq}`);
  }
  let anchoredHead: VerifyReport['anchoredHead'];
  if (external) {
    const { anchor: head, file } = external;
    const ledgerId = (await store.meta())[META_LEDGER_ID];
    const problem =
      ledgerId !== head.ledgerId
        ? `its anchor ${file} is of ledger ${shortId(head.ledgerId)} (${head.seq} records checkpointed), but this is ${ledgerId ? `ledger ${shortId(ledgerId)}` : 'a ledger never bound to a CA'}: the ledger was replaced`
        : await anchorProblem(store, head, file, { pruned: anchor, head: { seq: headSeq, hash: headHash } });
    if (problem) report(headSeq < head.seq ? 'removed' : 'anchor', Math.min(headSeq + 1, head.seq), problem);
    anchoredHead = { file, seq: head.seq, timeMs: head.timeMs, held: problem === undefined };
  }
  problems.sort((a, b) => a.seq - b.seq);
  return {
    ...(anchoredHead ? { anchoredHead } : {}),
    ok: problems.length === 0,
    records,
    anchorSeq: anchor.seq,
    headSeq,
    headHash,
    checkpoints: checkpoints.filter((c) => c.seq >= anchor.seq).length,
    checkpointsSigned,
    signaturesChecked: keys.length > 0,
    uncoveredRecords: headSeq - lastCovered,
    problems,
  };
}
