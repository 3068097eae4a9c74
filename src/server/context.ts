// What every feature of `meshca serve` works from: the verified CA state, the ledger, the issuer,
// the authenticator chain and the metrics registry. Opened once at start, closed last.

import { createIdentityPolicy, ensureDevIssuerKey, type Authenticator, type IdentityPolicy } from '../authn/index.ts';
import { bindTrustDomain, memoryGrantLedger, SvidIssuer, type GrantLedger } from '../ca/index.ts';
import { openKeyStore, type OpenedKeyStore } from '../keystore/index.ts';
import { aggregateRefusals, loadOrCreateLedgerKey, memoryLedger, openLedger, type ClosableLedgerWriter, type Ledger, type RefusalCounter } from '../ledger/index.ts';
import { createRegistry, type Logger, type Registry } from '../observability/index.ts';
import { authorityFromSnapshot, type KeyStore } from '../rotation/index.ts';
import { LOCAL_KEY_CUSTODY, type KeyCustody } from '../pki/index.ts';
import type { Pkcs11Api } from '../pkcs11/index.ts';
import type { Clock } from '../time/index.ts';
import { buildAuthenticators, ensureCa, watchLedger } from './bootstrap.ts';
import { ledgerAppendObserver, ledgerCheckpointAgeGauge } from './metrics.ts';
import { CaState } from './ca_state.ts';
import { DenyListFollower } from './deny_list.ts';
import type { ServeConfig } from './config.ts';
import { createCaMetrics, type CaMetrics } from './metrics.ts';

export interface ServerContext {
  readonly config: ServeConfig;
  /** The trust domain the key store's CA certificates name (--trust-domain only agrees with it). */
  readonly trustDomain: string;
  readonly state: CaState;
  readonly issuer: SvidIssuer;
  readonly ledger: ClosableLedgerWriter;
  /** The queryable ledger; absent only for `--db memory:` (benchmarks). */
  readonly fullLedger?: Ledger;
  readonly registry: Registry;
  readonly metrics: CaMetrics;
  readonly authenticators: () => readonly Authenticator[];
  readonly policy: IdentityPolicy;
  /** The runtime deny list from the key store, which `policy` consults. */
  readonly denyList: DenyListFollower;
  readonly clock: Clock;
  readonly log: Logger;
  /** Set in a cluster worker (--workers N > 1): its rank, and the ledger the primary writes. */
  readonly worker?: WorkerRole;
}

/** A cluster worker's part: rank 0 does the singleton duties; every worker's records go to the primary's ledger. */
export interface WorkerRole {
  /** 0 … N-1; a restarted worker keeps its rank. */
  readonly rank: number;
  /** The primary's ledger (appends, queries and verification go over the cluster's IPC channel). */
  readonly ledger: Ledger;
}

/** True where the singleton duties run: a single process, or worker 0 of a cluster. */
export function doesSingletonDuties(ctx: Pick<ServerContext, 'worker'>): boolean {
  return ctx.worker === undefined || ctx.worker.rank === 0;
}

/** The context as serve's own features see it. */
export interface CaContext extends ServerContext {
  /** The key store as rotation keeps it (the cacerts files when never rotated). */
  readonly keyStore: KeyStore;
  /** Stops following the key store (a Secret's watch) and drops its working copy; serve calls it last. */
  readonly closeKeyStore: () => Promise<void>;
  /** The key store version `state` was loaded from. */
  readonly keysVersion: number;
  /** The ledger the CA writes through; remembers whether the last append failed, for /readyz. */
  readonly recorder: ReturnType<typeof watchLedger>;
  /** Refusals before authentication, counted per peer and reason per interval (flushed on the clock). */
  readonly refusals: RefusalCounter;
  /** Where the intermediate's key is: memory, or the --signer token (its health is in /readyz). */
  readonly signer: SignerCustody;
}

export interface SignerCustody {
  readonly custody: KeyCustody;
  readiness(): { ok: true } | { ok: false; reason: string };
  close(): void;
}

export interface ContextDeps {
  readonly clock: Clock;
  readonly log: Logger;
  /** Authenticators tried after the configured ones (tests). */
  readonly extraAuthenticators?: (ctx: ServerContext) => Authenticator[];
  /** Key type for an embedded development CA. */
  readonly devKeyType?: string;
  /** MESHCA_SIGNER_PIN, read by the serve command, for a --signer URI without pin-source. */
  readonly signerPin?: string;
  /** The PKCS#11 module to use instead of loading the library (tests pull the token out through it). */
  readonly pkcs11Api?: Pkcs11Api;
  /** This process is a cluster worker (see WorkerRole). */
  readonly worker?: WorkerRole;
}

/** The token --signer names (loaded only then), or keys in memory from the key store. */
async function openSignerCustody(config: ServeConfig, deps: ContextDeps): Promise<SignerCustody> {
  if (config.signer === undefined) return { custody: LOCAL_KEY_CUSTODY, readiness: () => ({ ok: true }), close: () => {} };
  const { openPkcs11Custody } = await import('../pkcs11/index.ts');
  const custody = openPkcs11Custody(config.signer, { clock: deps.clock, ...(deps.signerPin !== undefined ? { envPin: deps.signerPin } : {}), ...(deps.pkcs11Api ? { api: deps.pkcs11Api } : {}) });
  deps.log.info({ token: custody.token.label }, "signing with the intermediate's key in a PKCS#11 token (--signer)");
  return { custody, readiness: () => custody.readiness(), close: () => custody.close() };
}

/** Loads and verifies the CA, opens the ledger and builds the authenticator chain; closes the ledger again if a later step fails. */
export async function openServerContext(config: ServeConfig, deps: ContextDeps): Promise<CaContext> {
  const { clock, log } = deps;
  const signer = await openSignerCustody(config, deps);
  let opened: OpenedKeyStore | undefined;
  try {
    opened = await openKeyStore(config.keysDir, { ...(config.kubernetes.kubeconfigPath ? { kubeconfig: config.kubernetes.kubeconfigPath } : {}), clock, log });
    return await openWithKeys({ ...config, keysDir: opened.dir }, deps, opened, signer);
  } catch (err) {
    signer.close();
    await opened?.close();
    throw err;
  }
}

/** Files a CA makes on first use, made before anything reads them so that every replica shares one set. */
async function settleSharedFiles(config: ServeConfig, deps: ContextDeps, opened: OpenedKeyStore, custody: KeyCustody): Promise<void> {
  await opened.settle(async () => {
    await ensureCa(config, { ...deps, custody });
    // Made here, before a cluster's workers start, so that all of them load the one key.
    if (config.devTokens) ensureDevIssuerKey(config.keysDir);
    if (!opened.remote) return;
    if (config.db !== 'memory:') loadOrCreateLedgerKey(config.keysDir);
  });
}

async function openWithKeys(config: ServeConfig, deps: ContextDeps, opened: OpenedKeyStore, signer: SignerCustody): Promise<CaContext> {
  const { clock, log } = deps;
  await settleSharedFiles(config, deps, opened, signer.custody);
  opened.follow();
  const keyStore = opened.store;
  const loaded = authorityFromSnapshot(keyStore.snapshot(clock.now()), clock.now(), signer.custody);
  const trustDomain = bindTrustDomain(loaded.authority, config.trustDomain, opened.location);
  const state = new CaState(loaded.authority, loaded.extraIssuers);
  // `memory:` keeps nothing and cannot be audited: for benchmarks only (each cluster worker keeps its own).
  const fullLedger = config.db === 'memory:' ? undefined : (deps.worker?.ledger ?? (await openServeLedger(config, clock, loaded.authority.rootKeyId)));
  // Renewals over mTLS look their chain's grant up in the ledger (--max-renewal-age).
  const { ledger, grants } = fullLedger ? { ledger: fullLedger, grants: fullLedger } : inMemoryLedger();
  if (!fullLedger) log.warn('--db memory: issuance records are kept in memory only and lost on exit; use sqlite: or postgres:// in any real deployment');
  const registry = createRegistry();
  const recorder = watchLedger(ledger, () => fullLedger?.health(), ledgerAppendObserver(registry));
  // In a cluster the primary, which writes the ledger, reports its checkpoint age.
  if (!deps.worker) ledgerCheckpointAgeGauge(registry, clock, async () => fullLedger?.newestCheckpointTimeMs());
  // Anyone can be refused before authenticating: count those, so a flood cannot fill the ledger.
  const refusals = aggregateRefusals({ ledger: recorder, clock, onError: (message) => log.warn(message) });
  try {
    const issuer = new SvidIssuer({ authority: () => state.authority, ledger: recorder, clock, ttl: config.ttl, maxRenewalAgeMs: config.maxRenewalAgeMs, grants, refusals });
    const chain = await buildAuthenticators(config, trustDomain, state, deps, registry);
    const denyList = new DenyListFollower(keyStore.denyList, log);
    const identityPolicy = createIdentityPolicy(config.policy, { check: denyList.check, nowMs: () => clock.now() });
    const ctx: CaContext = {
      config, trustDomain, state, issuer, ledger, ...(fullLedger ? { fullLedger } : {}), registry, metrics: createCaMetrics(registry), clock, log,
      policy: identityPolicy, denyList, authenticators: () => chain, keyStore, closeKeyStore: () => opened.close(), keysVersion: loaded.version, recorder, refusals, signer,
      ...(deps.worker ? { worker: deps.worker } : {}),
    };
    if (deps.extraAuthenticators) chain.push(...deps.extraAuthenticators(ctx));
    return Object.freeze(ctx);
  } catch (err) {
    await refusals.stop();
    await ledger.close();
    throw err;
  }
}

/** The ledger serve writes (--db), bound to the CA in the key directory. */
export function openServeLedger(config: ServeConfig, clock: Clock, rootKeyId: string): Promise<Ledger> {
  return openLedger(config.db, {
    clock,
    keysDir: config.keysDir,
    rootKeyId,
    newLedger: config.newLedger,
    checkpointEvery: config.checkpointEvery,
    checkpointIntervalMs: config.checkpointIntervalMs,
  });
}

/**
 * What a cluster's primary holds instead of a whole context: the shared key files settled (a first
 * CA, the ledger key) before any worker starts, and the one ledger (undefined for `memory:`).
 */
export async function openPrimaryLedger(config: ServeConfig, deps: ContextDeps): Promise<{ readonly ledger?: Ledger; readonly close: () => Promise<void> }> {
  const { clock } = deps;
  const signer = await openSignerCustody(config, deps);
  let opened: OpenedKeyStore | undefined;
  try {
    opened = await openKeyStore(config.keysDir, { ...(config.kubernetes.kubeconfigPath ? { kubeconfig: config.kubernetes.kubeconfigPath } : {}), clock, log: deps.log });
    const keysConfig = { ...config, keysDir: opened.dir };
    await settleSharedFiles(keysConfig, deps, opened, signer.custody);
    opened.follow();
    const { rootKeyId } = authorityFromSnapshot(opened.store.snapshot(clock.now()), clock.now(), signer.custody).authority;
    const ledger = config.db === 'memory:' ? undefined : await openServeLedger(keysConfig, clock, rootKeyId);
    const keys = opened;
    return { ...(ledger ? { ledger } : {}), close: () => keys.close() };
  } catch (err) {
    await opened?.close();
    throw err;
  } finally {
    signer.close();
  }
}

/** `--db memory:` (benchmarks): records kept in this process, and the grant lookup over them. */
function inMemoryLedger(): { ledger: ClosableLedgerWriter; grants: GrantLedger } {
  const memory = memoryLedger();
  return { ledger: memory, grants: memoryGrantLedger(memory.events) };
}
