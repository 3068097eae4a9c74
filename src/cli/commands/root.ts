// `meshca root status|prepare|activate|retire|rotate-intermediate`: root rotation on the key store
// directly, from any machine that mounts it. Each step is idempotent, locked and recorded in the
// ledger; refusals are one line that says why and when it becomes safe. The waits come from the
// ledger (what was issued, the running CAs' maximum TTL), never from a flag.

import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { bindTrustDomain, MAX_LEAF_TTL_MS, PENDING_DIR, readPendingRequest } from '../../ca/index.ts';
import { isMeshcaError, MeshcaError } from '../../errors/index.ts';
import { ledgerUrlFor, loadOrCreateLedgerKey, memoryLedger, openLedger, type Ledger } from '../../ledger/index.ts';
import { isKeyReference, readPrivateKeyFile } from '../../pki/index.ts';
import { createPublicKey } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openKeyStore, type OpenedKeyStore } from '../../keystore/index.ts';
import {
  activeCertificatesOf,
  activateRoot,
  formatRotationStatus,
  prepareRoot,
  retireRoot,
  rootStepPolicy,
  rotateIntermediate,
  rotationPolicy,
  rotationStatus,
  type ExternalRoot,
  type RotationContext,
} from '../../rotation/index.ts';
import { readSettingFile, SETTINGS, type Settings } from '../../config/index.ts';
import { defineCommand, report, type CommandContext } from '../command.ts';
import { existingRootPaths } from './existing_root.ts';
import { openCustody } from '../custody.ts';
import { REMOTE_SETTINGS } from '../remote.ts';
import { refuseExternalRootRemotely, runRemoteRootStep } from './root_remote.ts';

const COMMON = ['keys', 'kubeconfig', 'db', 'new-ledger', 'trust-domain', 'json', ...REMOTE_SETTINGS] as const;
/** What the certificates a rotation step makes are like; only prepare and rotate-intermediate make any. */
const MAKING = ['org', 'root-ttl', 'ca-ttl'] as const;

/** Every root command can also ask a running CA's admin API instead of the key store. */
const REMOTE_USAGE = ' | --server HOST:PORT --root-cert F (--cert F --key F | --token-file F)';

type RotationSettings = Settings<{ settings: typeof COMMON }> & Partial<Settings<{ settings: typeof MAKING }>> & { readonly signer?: string };

/** Without a ledger to read, the steps assume the default maximum TTL (and activate/retire refuse unless forced). */
const NO_FACTS_POLICY = rotationPolicy(MAX_LEAF_TTL_MS, undefined, { maxTtlSource: 'no ledger was read (--db), so the default maximum TTL is assumed' });

function actor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli:unknown';
  }
}

/** The key store --keys names (a directory, or a Secret through --kubeconfig), closed after `fn`. */
async function withKeyStore<T>(v: { keys: string; kubeconfig?: string | undefined }, ctx: CommandContext, fn: (opened: OpenedKeyStore) => Promise<T>): Promise<T> {
  const opened = await openKeyStore(v.keys, { ...(v.kubeconfig ? { kubeconfig: v.kubeconfig } : {}), clock: ctx.clock });
  try {
    return await fn(opened);
  } finally {
    await opened.close();
  }
}

/** --db, or the default beside a key directory; a Secret has no "beside", so it needs --db. */
function ledgerUrlOf(v: { db?: string | undefined }, opened: OpenedKeyStore): string {
  if (opened.remote && v.db === undefined) throw new MeshcaError('BAD_CONFIG', `--db is required with --keys ${opened.location}: name the CA's ledger (postgres://… or sqlite:<path>), or memory: for none`);
  return ledgerUrlFor(v.db, opened.dir);
}

/**
 * Runs a step with the CA's ledger, which it records in and reads its facts from. activate and
 * retire (`needsFacts`) refuse without one unless --force: they could not know what was issued.
 */
async function withContext<T>(v: RotationSettings, ctx: CommandContext, fn: (rc: RotationContext) => Promise<T>, needsFacts?: { force: boolean; step: string }): Promise<T> {
  return withKeyStore(v, ctx, (opened) => withOpenedContext(v, ctx, opened, fn, needsFacts));
}

async function withOpenedContext<T>(v: RotationSettings, ctx: CommandContext, opened: OpenedKeyStore, fn: (rc: RotationContext) => Promise<T>, needsFacts?: { force: boolean; step: string }): Promise<T> {
  const store = opened.store;
  // The key store names the trust domain; a --trust-domain that disagrees stops here, before the ledger opens.
  const trustDomain = bindTrustDomain(activeCertificatesOf(store.snapshot(ctx.clock.now())), v['trust-domain'], opened.location);
  const db = ledgerUrlOf(v, opened);
  if (db === 'memory:' && needsFacts && !needsFacts.force) {
    throw new MeshcaError(
      'ROTATION_REFUSED',
      `refused: "root ${needsFacts.step}" reads what was issued from the CA's ledger, and --db memory: has none; pass the CA's --db, or --force to skip the safety wait`,
    );
  }
  // The ledger key is shared through the key store: settle it before the ledger binds to one.
  if (db !== 'memory:') await opened.settle(() => void loadOrCreateLedgerKey(opened.dir));
  const ledger = db === 'memory:' ? undefined : await openLedger(db, { keysDir: opened.dir, newLedger: v['new-ledger'], clock: ctx.clock });
  const writer = ledger ?? memoryLedger();
  const { custody, close } = await openCustody(v.signer, ctx).catch(async (err: unknown) => {
    await writer.close();
    throw err;
  });
  try {
    return await fn({
      custody,
      store,
      clock: ctx.clock,
      policy: NO_FACTS_POLICY,
      ...(ledger ? { facts: { ledger } } : {}),
      ledger: writer,
      actor: actor(),
      // activate and retire make no certificate: the table's defaults stand in for what they do not accept.
      organization: v.org ?? SETTINGS.org.default,
      rootTtlMs: v['root-ttl'] ?? SETTINGS['root-ttl'].default,
      caTtlMs: v['ca-ttl'] ?? SETTINGS['ca-ttl'].default,
      trustDomain,
    });
  } finally {
    close();
    await writer.close();
  }
}

/** The ledger for counting acknowledgements, if one exists; status works without it. */
async function openForCounting(db: string, keysDir: string): Promise<Ledger | undefined> {
  if (db === 'memory:') return undefined;
  if (db.startsWith('sqlite:') && !existsSync(db.slice('sqlite:'.length))) return undefined;
  try {
    return await openLedger(db, { mustExist: true, bindTo: keysDir });
  } catch (err) {
    // Another CA's ledger would count other CAs' certificates: that is an error, not "no ledger".
    if (isMeshcaError(err, 'BAD_CONFIG')) throw err;
    return undefined;
  }
}

const statusCommand = defineCommand({
  path: ['root', 'status'],
  usage: `meshca root status [--keys DIR] [--db URL] [--json]${REMOTE_USAGE}`,
  options: { settings: COMMON },
  async run(v, ctx) {
    if (v.server !== undefined) return runRemoteRootStep('status', { ...v, server: v.server }, ctx);
    // The snapshot reads slot material lazily: use it while the store is open.
    return withKeyStore(v, ctx, async (opened) => {
      const snapshot = opened.store.snapshot(ctx.clock.now());
      const ledger = await openForCounting(ledgerUrlOf(v, opened), opened.dir);
      try {
        const policy = ledger ? await rootStepPolicy({ policy: NO_FACTS_POLICY, facts: { ledger } }, snapshot.state) : NO_FACTS_POLICY;
        const status = await rotationStatus(snapshot, ctx.clock.now(), policy, ledger);
        if (v.json) ctx.stdout(`${JSON.stringify(status, null, 2)}\n`);
        else ctx.stdout(formatRotationStatus(status));
        return 0;
      } finally {
        await ledger?.close();
      }
    });
  },
});

const prepareCommand = defineCommand({
  path: ['root', 'prepare'],
  usage: `meshca root prepare [--keys DIR] [--key-type ec-p256] [--external-root-cert FILE --external-root-key FILE | --cert intermediate.pem --chain chain.pem] [--signer pkcs11:…] [--db URL]${REMOTE_USAGE}`,
  options: { settings: [...COMMON, 'key-type', 'external-root-cert', 'external-root-key', 'chain', 'signer', ...MAKING] },
  async run(v, ctx) {
    if (v.chain !== undefined) {
      // The two-step form for an offline root: "ca csr" made the key, the root's holder signed it.
      if (v.server !== undefined) throw new MeshcaError('BAD_CONFIG', '--chain (an offline root\'s intermediate) cannot go with --server: run "meshca root prepare --cert … --chain …" where the key store is');
      if (v.cert === undefined) throw new MeshcaError('BAD_CONFIG', '--chain needs --cert: the intermediate the offline root signed for "meshca ca csr"');
      const certPath = v.cert;
      const chainPath = v.chain;
      const r = await withKeyStore(v, ctx, (opened) =>
        withOpenedContext(v, ctx, opened, async (rc) => {
          const pending = readPendingRequest(opened.dir);
          const publicKey = isKeyReference(pending.key) ? rc.custody!.signerFor(pending.key).publicKey : createPublicKey(pending.key);
          const offline = { certPem: readSettingFile(certPath, '--cert'), certSource: `--cert ${certPath}`, chainPem: readSettingFile(chainPath, '--chain'), chainSource: `--chain ${chainPath}`, key: pending.key, publicKey };
          const done = await prepareRoot(rc, { keyType: v['key-type'], offline });
          if (done.outcome === 'prepared') {
            rmSync(join(opened.dir, PENDING_DIR), { recursive: true, force: true });
            if (opened.remote) await opened.publish();
          }
          return done;
        }),
      );
      report(ctx, v, `prepared the offline root ${r.rootKeyId.slice(0, 16)}… with the intermediate it signed; it is in the trust bundle now and signs nothing yet. Activate it after ${r.activationAllowedAt} with "meshca root activate"`, r);
      return 0;
    }
    if (v.server !== undefined) {
      refuseExternalRootRemotely(v);
      return runRemoteRootStep('prepare', { ...v, server: v.server }, ctx, { key_type: v['key-type'] });
    }
    const paths = existingRootPaths(v);
    const external: ExternalRoot | undefined = paths && { certPem: readSettingFile(paths.certPath, '--external-root-cert'), key: readPrivateKeyFile(paths.keyPath) };
    const r = await withContext(v, ctx, (rc) => prepareRoot(rc, { keyType: v['key-type'], ...(external ? { external } : {}) }));
    const human =
      r.outcome === 'prepared'
        ? `prepared root ${r.rootKeyId.slice(0, 16)}… with intermediate ${r.intermediateKeyId.slice(0, 16)}…; it is in the trust bundle now and signs nothing yet. ` +
          `Activate it after ${r.activationAllowedAt} with "meshca root activate"`
        : `root ${r.rootKeyId.slice(0, 16)}… is already prepared (nothing changed); activate it after ${r.activationAllowedAt}`;
    report(ctx, v, human, r);
    return 0;
  },
});

const activateCommand = defineCommand({
  path: ['root', 'activate'],
  usage: `meshca root activate [--keys DIR] [--force] [--db URL]${REMOTE_USAGE}`,
  options: { settings: [...COMMON, 'force'] },
  async run(v, ctx) {
    if (v.server !== undefined) return runRemoteRootStep('activate', { ...v, server: v.server }, ctx, { force: v.force });
    const r = await withContext(v, ctx, (rc) => activateRoot(rc, { force: v.force }), { force: v.force, step: 'activate' });
    if (r.warning) ctx.stderr(`warning: ${r.warning}\n`);
    const human =
      r.outcome === 'activated'
        ? `activated root ${r.rootKeyId.slice(0, 16)}…: new certificates are signed by the new chain (every serve follows within 5 s); ` +
          `the previous root ${r.previousRootKeyId!.slice(0, 16)}… stays in the bundle until "meshca root retire"`
        : `root ${r.rootKeyId.slice(0, 16)}… is already active (nothing changed)`;
    report(ctx, v, human, r);
    return 0;
  },
});

const retireCommand = defineCommand({
  path: ['root', 'retire'],
  usage: `meshca root retire [--keys DIR] [--force] [--db URL]${REMOTE_USAGE}`,
  options: { settings: [...COMMON, 'force'] },
  async run(v, ctx) {
    if (v.server !== undefined) return runRemoteRootStep('retire', { ...v, server: v.server }, ctx, { force: v.force });
    const r = await withContext(v, ctx, (rc) => retireRoot(rc, { force: v.force }), { force: v.force, step: 'retire' });
    if (r.warning) ctx.stderr(`warning: ${r.warning}\n`);
    const human =
      r.outcome === 'retired'
        ? `retired root ${r.rootKeyId!.slice(0, 16)}…: it has left the trust bundle and its private key was deleted`
        : 'nothing to retire: the trust bundle holds only roots in use (nothing changed)';
    report(ctx, v, human, r);
    return 0;
  },
});

const rotateIntermediateCommand = defineCommand({
  path: ['root', 'rotate-intermediate'],
  usage: `meshca root rotate-intermediate [--keys DIR] [--key-type ec-p256] [--ca-ttl 365d] [--db URL]${REMOTE_USAGE}`,
  options: { settings: [...COMMON, 'key-type', 'org', 'ca-ttl', 'signer'] },
  async run(v, ctx) {
    if (v.server !== undefined) return runRemoteRootStep('rotate-intermediate', { ...v, server: v.server }, ctx, { key_type: v['key-type'] });
    const r = await withContext(v, ctx, (rc) => rotateIntermediate(rc, { keyType: v['key-type'], now: true }));
    report(ctx, v, `activated intermediate ${r.keyId!.slice(0, 16)}… under the active root; the previous one stays trusted until its certificates expire`, r);
    return 0;
  },
});

export { statusCommand as rootStatusCommand, prepareCommand as rootPrepareCommand, activateCommand as rootActivateCommand, retireCommand as rootRetireCommand, rotateIntermediateCommand as rootRotateIntermediateCommand };
