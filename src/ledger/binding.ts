// A ledger belongs to one CA, and its signed head is anchored outside the database.
//
// Binding: at creation the ledger records (in meshca_ledger_meta, and in its first record) the id
// of the ledger key that signs its checkpoints, a random ledger id, and the root key id the CA had
// then. The ledger key never rotates (root and intermediate rotation leave ledger-key.pem alone),
// so it names the CA for the CA's whole life; the root key id is kept for people, not checked.
//
// Anchor: `<keys>/ledger-head.json` is a copy of the newest checkpoint this CA signed, with the
// ledger id. Whoever can cut the tail of the database (delete records and checkpoints after N)
// cannot move the anchor back without the key directory, so start-up and `audit verify` see it.

import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MeshcaError } from '../errors/index.ts';
import { PUBLIC_FILE_MODE, writeFileAtomic } from '../pki/index.ts';
import { isCheckpointSignedBy, ledgerKeyIdOf } from './ledger_key.ts';
import type { ChainAnchor, LedgerStore, StoredCheckpoint } from './store.ts';

export const LEDGER_HEAD_FILE = 'ledger-head.json';

/** meshca_ledger_meta keys of the binding. */
export const META_LEDGER_ID = 'ledger_id';
export const META_LEDGER_KEY_ID = 'ledger_key_id';
export const META_ROOT_KEY_ID = 'root_key_id';

/** The newest checkpoint this CA signed, kept beside its ledger key. */
export interface HeadAnchor extends StoredCheckpoint {
  readonly ledgerId: string;
}

export function headAnchorPath(keysDir: string): string {
  return join(keysDir, LEDGER_HEAD_FILE);
}

/** Reads and checks an anchor file; undefined if there is none. A bad one is an error, never ignored. */
export function readHeadAnchor(path: string, publicKey: KeyObject | undefined): HeadAnchor | undefined {
  if (!existsSync(path)) return undefined;
  let a: HeadAnchor;
  try {
    a = JSON.parse(readFileSync(path, 'utf8')) as HeadAnchor;
  } catch (err) {
    throw new MeshcaError('BAD_KEY_FILE', `${path} is not a ledger head anchor (JSON)`, { cause: err });
  }
  const fields = [a?.ledgerId, a?.headHash, a?.keyId, a?.signature];
  if (fields.some((f) => typeof f !== 'string') || !Number.isSafeInteger(a.seq) || !Number.isSafeInteger(a.timeMs)) {
    throw new MeshcaError('BAD_KEY_FILE', `${path} is not a ledger head anchor: it needs ledgerId, seq, headHash, timeMs, keyId, signature`);
  }
  if (publicKey && (a.keyId !== ledgerKeyIdOf(publicKey) || !isCheckpointSignedBy(a, publicKey))) {
    throw new MeshcaError('BAD_KEY_FILE', `${path} is not signed by this key directory's ledger key: it was altered, or copied from another CA`);
  }
  return a;
}

export function writeHeadAnchor(path: string, anchor: HeadAnchor): void {
  const { ledgerId, seq, headHash, timeMs, keyId, signature } = anchor;
  writeFileAtomic(path, `${JSON.stringify({ ledgerId, seq, headHash, timeMs, keyId, signature }, null, 2)}\n`, PUBLIC_FILE_MODE);
}

export function shortId(id: string): string {
  return `${id.slice(0, 16)}…`;
}

/** The error for a ledger opened with another CA's key directory: names both. */
export function wrongCa(where: string, meta: Readonly<Record<string, string>>, keysDir: string, keyId: string, rootKeyId: string | undefined): MeshcaError {
  const theirs = `ledger key ${shortId(meta[META_LEDGER_KEY_ID] ?? '?')}${meta[META_ROOT_KEY_ID] ? `, root key ${shortId(meta[META_ROOT_KEY_ID])} at creation` : ''}`;
  const ours = `ledger key ${shortId(keyId)}${rootKeyId ? `, root key ${shortId(rootKeyId)}` : ''}`;
  return new MeshcaError(
    'BAD_CONFIG',
    `ledger ${where} belongs to another CA (${theirs}), not to the CA in ${keysDir} (${ours}); ` +
      `give each CA its own --db (the default, sqlite:<keys>/ledger.db, does) or use the --keys directory this ledger was made with`,
  );
}

export interface LedgerTip {
  /** Where the chain starts (pruned up to), and its newest record. */
  readonly pruned: ChainAnchor;
  readonly head: { readonly seq: number; readonly hash: string };
}

export async function ledgerTip(store: LedgerStore): Promise<LedgerTip> {
  const pruned = await store.anchor();
  const newest = (await store.query({ order: 'desc', limit: 1 }))[0];
  return { pruned, head: newest ? { seq: newest.seq, hash: newest.hash } : pruned };
}

/**
 * Whether the ledger still holds the anchored head: undefined if it does, else what is missing.
 * A head pruned away by retention counts as held (prune keeps only whole signed checkpoints).
 */
export async function anchorProblem(store: LedgerStore, anchor: HeadAnchor, anchorFile: string, tip: LedgerTip): Promise<string | undefined> {
  if (tip.pruned.seq >= anchor.seq) return undefined;
  const when = new Date(anchor.timeMs).toISOString();
  if (tip.head.seq < anchor.seq) {
    return (
      `the ledger ends at seq ${tip.head.seq} but its anchor ${anchorFile} says ${anchor.seq} were checkpointed (${when}): ` +
      `record${anchor.seq - tip.head.seq > 1 ? `s ${tip.head.seq + 1}–${anchor.seq} were` : ` ${anchor.seq} was`} cut from its tail`
    );
  }
  const at = (await store.scan(anchor.seq - 1, 1))[0];
  if (!at || at.seq !== anchor.seq || at.hash !== anchor.headHash) {
    return `record ${anchor.seq} differs from the head its anchor ${anchorFile} says was checkpointed (${when}): the ledger was rewritten from there`;
  }
  return undefined;
}
