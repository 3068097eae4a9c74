// `meshca deny add|remove|list`: the runtime deny list, on the key store directly (--keys, from any
// machine that mounts it) or through a running CA's admin API (--server, for --admins). Every serve
// sharing the key store applies a change within 5 s; each change is in the ledger with its author.

import { userInfo } from 'node:os';
import type { Settings } from '../../config/index.ts';
import { MeshcaError } from '../../errors/index.ts';
import { ledgerUrlFor, openLedgerWriter } from '../../ledger/index.ts';
import { addDenyEntry, denyListRows, DirectoryKeyStore, formatDenyListRows, removeDenyEntry, type DenyChangeContext, type DenyListRow } from '../../rotation/index.ts';
import { parseDuration, type Clock } from '../../time/index.ts';
import { DENY_LIST_SERVICE } from '../../transport/index.ts';
import { defineCommand, report, type CommandContext } from '../command.ts';
import { connectRemote, REMOTE_SETTINGS, type RemoteSettings } from '../remote.ts';

const LOCAL = ['keys', 'db', 'json'] as const;

function actor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli:unknown';
  }
}

/** "2030-01-31T12:00:00Z", or a duration from now ("8h", "7d"). */
export function parseDenyUntil(text: string, clock: Clock): number {
  const t = text.trim();
  if (/^\d{4}-\d{2}-\d{2}/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isNaN(ms)) throw new MeshcaError('BAD_REQUEST', `--until "${text}" is not an ISO 8601 time; use e.g. 2030-01-31T12:00:00Z`);
    return ms;
  }
  try {
    return clock.now() + parseDuration(t, '--until');
  } catch {
    throw new MeshcaError('BAD_REQUEST', `--until "${text}" is neither an ISO 8601 time (2030-01-31T12:00:00Z) nor a duration from now (8h, 7d)`);
  }
}

function onlyTarget(positionals: readonly string[], usage: string): string {
  if (positionals.length !== 1) throw new MeshcaError('BAD_REQUEST', `give exactly one target: ${usage}`);
  return positionals[0]!;
}

async function withLocal<T>(v: Settings<{ settings: typeof LOCAL }>, ctx: CommandContext, fn: (dc: DenyChangeContext) => Promise<T>): Promise<T> {
  const store = new DirectoryKeyStore(v.keys).denyList;
  const ledger = await openLedgerWriter(ledgerUrlFor(v.db, v.keys), { keysDir: v.keys, clock: ctx.clock });
  try {
    return await fn({ store, ledger, clock: ctx.clock, actor: actor() });
  } finally {
    await ledger.close();
  }
}

/** Calls the running CA's DenyListService as the admin --cert/--key or --token-file proves. */
async function callRemote<T>(v: RemoteSettings & { readonly server: string }, ctx: CommandContext, method: 'Add' | 'Remove' | 'List', request: object): Promise<T> {
  const remote = connectRemote(DENY_LIST_SERVICE, v, ctx.clock);
  try {
    return await remote.unary<T>(method, request);
  } finally {
    remote.close();
  }
}

const addUsage = 'meshca deny add <spiffe-id | ns/<ns> | ns/<ns>/sa/<sa>> --reason TEXT [--until 2030-01-31T12:00:00Z | 8h] [--keys DIR --db URL | --server HOST:PORT --root-cert F (--cert F --key F | --token-file F)]';
const addCommand = defineCommand({
  path: ['deny', 'add'],
  usage: addUsage,
  options: { settings: [...LOCAL, ...REMOTE_SETTINGS, 'reason', 'until'], required: ['reason'], positionals: true },
  async run(v, ctx, positionals) {
    const target = onlyTarget(positionals, addUsage);
    const untilMs = v.until === undefined ? undefined : parseDenyUntil(v.until, ctx.clock);
    const r = v.server
      ? await callRemote<{ outcome: string; target: string }>({ ...v, server: v.server }, ctx, 'Add', { target, reason: v.reason, until: untilMs === undefined ? '' : new Date(untilMs).toISOString() })
      : await withLocal(v, ctx, async (dc) => {
          const done = await addDenyEntry(dc, { target, reason: v.reason, ...(untilMs !== undefined ? { untilMs } : {}) });
          return { outcome: done.outcome, target: done.entry.target };
        });
    const until = untilMs === undefined ? 'until removed' : `until ${new Date(untilMs).toISOString()}`;
    report(ctx, v, `${r.outcome} ${r.target} on the deny list ${until}: every serve of this key store refuses it within 5 s`, r);
    return 0;
  },
});

const removeUsage = 'meshca deny remove <target> [--keys DIR --db URL | --server HOST:PORT --root-cert F (--cert F --key F | --token-file F)]';
const removeCommand = defineCommand({
  path: ['deny', 'remove'],
  usage: removeUsage,
  options: { settings: [...LOCAL, ...REMOTE_SETTINGS], positionals: true },
  async run(v, ctx, positionals) {
    const target = onlyTarget(positionals, removeUsage);
    const r = v.server
      ? await callRemote<{ outcome: string; target: string }>({ ...v, server: v.server }, ctx, 'Remove', { target })
      : await withLocal(v, ctx, (dc) => removeDenyEntry(dc, target));
    report(ctx, v, r.outcome === 'removed' ? `removed ${r.target} from the deny list` : `${r.target} is not on the runtime deny list (nothing changed)`, r);
    return 0;
  },
});

interface WireRow {
  target: string;
  source: 'runtime' | 'static';
  reason: string;
  added_by: string;
  added_at: string;
  until: string;
  in_force: boolean;
}

const listCommand = defineCommand({
  path: ['deny', 'list'],
  usage: 'meshca deny list [--keys DIR] [--deny-ids …] [--deny-namespaces …] [--json] | --server HOST:PORT --root-cert F (--cert F --key F | --token-file F)',
  options: { settings: [...LOCAL, ...REMOTE_SETTINGS, 'deny-ids', 'deny-namespaces'] },
  async run(v, ctx) {
    let rows: DenyListRow[];
    if (v.server) {
      const res = await callRemote<{ entries: WireRow[] }>({ ...v, server: v.server }, ctx, 'List', {});
      rows = res.entries.map((e) => ({
        target: e.target, source: e.source, reason: e.reason, inForce: e.in_force,
        ...(e.added_by ? { addedBy: e.added_by } : {}), ...(e.added_at ? { addedAt: e.added_at } : {}), ...(e.until ? { until: e.until } : {}),
      }));
    } else {
      const doc = new DirectoryKeyStore(v.keys).denyList.read();
      rows = denyListRows(doc, { denyIds: v['deny-ids'].map((id) => id.uri), denyNamespaces: v['deny-namespaces'] }, ctx.clock.now());
    }
    if (v.json) ctx.stdout(`${JSON.stringify(rows, null, 2)}\n`);
    else ctx.stdout(formatDenyListRows(rows));
    return 0;
  },
});

export { addCommand as denyAddCommand, removeCommand as denyRemoveCommand, listCommand as denyListCommand };
