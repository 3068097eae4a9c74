// The key store in one Kubernetes Secret (`--keys k8s-secret:<namespace>/<name>`), like Istio's
// cacerts. The Secret holds the same files as a key directory (cacerts, rotation state, every
// slot's material, the ledger key), one data key per file; a private 0700 working copy (a
// memory-backed emptyDir in the manifests) lets the directory code read and write them unchanged.
// Every write is conditional on the resourceVersion read: a 409 is re-read and retried, never
// overwritten. A watch keeps the working copy following the Secret.

import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { describeError, MeshcaError } from '../errors/index.ts';
import { encodePath, KubeClient, kubeStatusOf, loadDefaultKubeConfig, loadKubeconfigFile, type KubeConfig, type ObjectMeta as V1ObjectMeta, type Secret as V1Secret } from '../kube/index.ts';
import { DEFAULT_LEDGER_FILE, LEDGER_HEAD_FILE } from '../ledger/index.ts';
import type { Logger } from '../observability/index.ts';
import { PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, writeFileAtomic } from '../pki/index.ts';
import { DirectoryDenyListStore, DirectoryKeyStore, type DenyListStore, type KeyStore, type KeyStoreSnapshot, type Transition } from '../rotation/index.ts';
import { SECOND_MS, type Clock, type Timer } from '../time/index.ts';

/** Kubernetes refuses a Secret whose data exceeds this (etcd's object limit). */
export const SECRET_SIZE_LIMIT_BYTES = 1024 * 1024;
/** Conflicts retried before a write gives up (each retry re-reads and re-runs the step). */
export const MAX_CONFLICT_RETRIES = 5;
export const WATCH_RESTART_MS = SECOND_MS;
/** A path separator in a data key: Secret keys allow only [-._a-zA-Z0-9]. */
const KEY_SEPARATOR = '__';
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const PRIVATE_FILE = /(^|-)key\.pem$|^tls\.key$/;
/**
 * Files a process keeps for itself beside the key store and never shares through the Secret: a
 * default SQLite ledger (and its journals) and the ledger's head anchor, both per process.
 */
const LOCAL_ONLY = new Set([DEFAULT_LEDGER_FILE, `${DEFAULT_LEDGER_FILE}-wal`, `${DEFAULT_LEDGER_FILE}-shm`, `${DEFAULT_LEDGER_FILE}-journal`, LEDGER_HEAD_FILE]);

export interface SecretRef {
  readonly namespace: string;
  readonly name: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function parseSecretRef(url: string): SecretRef {
  const m = /^k8s-secret:([^/]+)\/([^/]+)$/.exec(url);
  if (!m || !DNS_LABEL.test(m[1]!) || m[1]!.length > 63 || !DNS_SUBDOMAIN.test(m[2]!) || m[2]!.length > 253) {
    throw new MeshcaError('BAD_CONFIG', `--keys ${url}: expected k8s-secret:<namespace>/<name> with Kubernetes names (lowercase letters, digits, '-', and '.' in the name)`);
  }
  return { namespace: m[1]!, name: m[2]! };
}

/** A working-copy path ("rotation/roots/<id>/root-cert.pem") as a Secret data key, and back. */
export function dataKeyOf(relPath: string): string {
  const parts = relPath.split(sep);
  if (parts.some((p) => p.includes(KEY_SEPARATOR) || !SECRET_KEY.test(p))) {
    throw new MeshcaError('INTERNAL', `the key store file ${relPath} cannot be stored in a Secret (names may hold only letters, digits, '-', '.', single '_')`);
  }
  return parts.join(KEY_SEPARATOR);
}

export function pathOfDataKey(key: string): string {
  const parts = key.split(KEY_SEPARATOR);
  if (!SECRET_KEY.test(key) || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new MeshcaError('BAD_KEY_FILE', `the Secret key "${key}" is not a key store file name`);
  }
  return parts.join(sep);
}

/** Files in the working copy as data keys → bytes; the lock and atomic-write temporaries (dot files) stay local. */
function readTree(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || (dir === root && LOCAL_ONLY.has(entry.name))) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) out.set(dataKeyOf(relative(root, path)), readFileSync(path));
    }
  };
  walk(root);
  return out;
}

function dataOf(secret: V1Secret | undefined): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(secret?.data ?? {})) out.set(k, Buffer.from(v, 'base64'));
  return out;
}

function sameData(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (!b.get(k)?.equals(v)) return false;
  return true;
}

/** Bytes the Secret's data takes as stored (base64), which is what the 1 MiB limit counts. */
export function secretDataBytes(data: ReadonlyMap<string, Buffer>): number {
  let n = 0;
  for (const [k, v] of data) n += k.length + Math.ceil(v.length / 3) * 4;
  return n;
}

export interface SecretKeyStoreOptions {
  readonly ref: SecretRef;
  readonly kubeConfig: KubeConfig;
  readonly clock: Clock;
  readonly log?: Logger;
  /** Where the private working copy goes (default: a fresh 0700 directory under the OS temp dir). */
  readonly workDir?: string;
}

export class SecretKeyStore implements KeyStore {
  readonly location: string;
  /** The working copy: a key directory the rest of meshca reads like any other. */
  readonly dir: string;
  readonly #o: SecretKeyStoreOptions;
  readonly #api: KubeClient;
  /** The Secret's collection and the Secret itself, as API paths. */
  readonly #collection: string;
  readonly #path: string;
  readonly #inner: DirectoryKeyStore;
  readonly #ownsDir: boolean;
  /** resourceVersion of the Secret the working copy holds; undefined: no Secret yet. */
  #rv: string | undefined;
  #data = new Map<string, Buffer>();
  /** Labels and annotations others put on the Secret: kept on every write. */
  #meta: Pick<V1ObjectMeta, 'labels' | 'annotations'> = {};
  /** Working-copy writers (watch, transactions, publish) run one at a time. */
  #queue: Promise<unknown> = Promise.resolve();
  #watch?: AbortController;
  /** The runtime deny list: its file in the working copy, changed by the same read–change–conditional-write loop. */
  readonly denyList: DenyListStore;
  #restart?: Timer;
  #closed = false;

  private constructor(o: SecretKeyStoreOptions) {
    this.#o = o;
    this.location = `k8s-secret:${o.ref.namespace}/${o.ref.name}`;
    this.#ownsDir = o.workDir === undefined;
    this.dir = o.workDir ?? mkdtempSync(join(tmpdir(), 'meshca-keys-'));
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    this.#api = new KubeClient(o.kubeConfig, { clock: o.clock });
    this.#collection = `/api/v1/namespaces/${encodePath(o.ref.namespace)}/secrets`;
    this.#path = `${this.#collection}/${encodePath(o.ref.name)}`;
    this.#inner = new DirectoryKeyStore(this.dir);
    const local = new DirectoryDenyListStore(this.dir);
    this.denyList = {
      read: () => local.read(),
      changeToken: () => local.changeToken(),
      update: (change) => this.#conditionally(() => local.update(change)),
    };
  }

  /** Reads the Secret (absent is fine: an empty key store) into a fresh working copy. */
  static async open(o: SecretKeyStoreOptions): Promise<SecretKeyStore> {
    const store = new SecretKeyStore(o);
    try {
      store.#install(await store.#read());
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  get resourceVersion(): string | undefined {
    return this.#rv;
  }

  /** Bytes the Secret's data takes now. */
  get sizeBytes(): number {
    return secretDataBytes(this.#data);
  }

  async #read(): Promise<V1Secret | undefined> {
    try {
      return await this.#api.get<V1Secret>(this.#path);
    } catch (err) {
      if (kubeStatusOf(err) === 404) return undefined;
      throw this.#unavailable('read', err);
    }
  }

  #unavailable(what: string, err: unknown): MeshcaError {
    const status = kubeStatusOf(err);
    const hint = status === 403 ? ' (RBAC: the service account needs get/update/watch on this Secret, and create; see docs/kubernetes.md)' : '';
    return new MeshcaError('KEYS_MISSING', `cannot ${what} the key store Secret ${this.location}: ${status ? `HTTP ${status}` : describeError(err)}${hint}`, { cause: err });
  }

  /** Makes the working copy exactly the Secret's files (keys 0600). */
  #install(secret: V1Secret | undefined): void {
    const data = dataOf(secret);
    const local = readTree(this.dir);
    for (const key of local.keys()) if (!data.has(key)) unlinkSync(join(this.dir, pathOfDataKey(key)));
    for (const [key, bytes] of data) {
      if (local.get(key)?.equals(bytes)) continue;
      const path = join(this.dir, pathOfDataKey(key));
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileAtomic(path, bytes, PRIVATE_FILE.test(key) ? PRIVATE_FILE_MODE : PUBLIC_FILE_MODE);
    }
    this.#data = data;
    this.#rv = secret?.metadata?.resourceVersion;
    this.#meta = { ...(secret?.metadata?.labels ? { labels: secret.metadata.labels } : {}), ...(secret?.metadata?.annotations ? { annotations: secret.metadata.annotations } : {}) };
  }

  #serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Writes the working copy to the Secret, conditional on the version it was read at. Resolves
   * true when written (or nothing changed); false on a 409, after re-reading the Secret into the
   * working copy (whatever was only local is then gone: the caller decides whether to redo it).
   */
  async #write(): Promise<boolean> {
    const files = readTree(this.dir);
    if (this.#rv !== undefined && sameData(files, this.#data)) return true;
    const size = secretDataBytes(files);
    if (size > SECRET_SIZE_LIMIT_BYTES) {
      throw new MeshcaError('ROTATION_REFUSED', `the key store would take ${size} bytes, over the Secret limit of ${SECRET_SIZE_LIMIT_BYTES}; nothing was written`);
    }
    const data = Object.fromEntries([...files].map(([k, v]) => [k, v.toString('base64')]));
    const { namespace, name } = this.#o.ref;
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        ...this.#meta,
        name,
        namespace,
        labels: { ...this.#meta.labels, 'app.kubernetes.io/name': 'meshca', 'app.kubernetes.io/component': 'key-store' },
        ...(this.#rv ? { resourceVersion: this.#rv } : {}),
      },
      type: 'Opaque',
      data,
    };
    try {
      const written = this.#rv === undefined
        ? await this.#api.create<V1Secret>(this.#collection, body)
        : await this.#api.replace<V1Secret>(this.#path, body);
      this.#data = files;
      this.#rv = written.metadata?.resourceVersion;
      this.#meta = { ...(written.metadata?.labels ? { labels: written.metadata.labels } : {}), ...(written.metadata?.annotations ? { annotations: written.metadata.annotations } : {}) };
      return true;
    } catch (err) {
      // 409: Conflict on replace (stale resourceVersion) or AlreadyExists on create.
      if (kubeStatusOf(err) !== 409) throw this.#unavailable('write', err);
      this.#o.log?.info({ keys: this.location }, 'the key store Secret changed underneath a write (409); re-reading it');
      this.#install(await this.#read());
      return false;
    }
  }

  /**
   * Publishes files written into the working copy outside a transaction (ca init, the serve
   * bootstrap, the ledger key). On a conflict the Secret wins and `false` is returned: someone else
   * made them first, and the working copy now holds theirs.
   */
  publish(): Promise<boolean> {
    return this.#serialized(() => this.#write());
  }

  snapshot(nowMs: number): KeyStoreSnapshot {
    this.#requireCa();
    return this.#inner.snapshot(nowMs);
  }

  #requireCa(): void {
    if (this.#data.size === 0) {
      throw new MeshcaError('KEYS_MISSING', `the key store Secret ${this.location} ${this.#rv === undefined ? 'does not exist' : 'holds no CA'}; run "meshca ca init --keys ${this.location}" first`);
    }
  }

  changeToken(): string {
    return this.#rv ?? '-';
  }

  /** Re-reads the Secret, runs the step on it, writes the result only if nobody wrote meanwhile; retries a 409. */
  transact<T>(transition: Transition<T>, nowMs: () => number): Promise<T> {
    return this.#conditionally(() => this.#inner.transact(transition, nowMs));
  }

  /** Runs `step` on a fresh working copy and writes what it changed on condition of the version read; a 409 re-reads and re-runs it. */
  #conditionally<T>(step: () => Promise<T>): Promise<T> {
    return this.#serialized(async () => {
      for (let attempt = 0; ; attempt++) {
        this.#install(await this.#read());
        this.#requireCa();
        const before = this.#rv;
        let result: T;
        try {
          result = await step();
        } catch (err) {
          this.#install(await this.#read());
          throw err;
        }
        if (await this.#write()) return result;
        if (attempt + 1 >= MAX_CONFLICT_RETRIES) {
          throw new MeshcaError('ROTATION_REFUSED', `the key store Secret ${this.location} kept changing underneath this step (${MAX_CONFLICT_RETRIES} conflicts since version ${before}); run it again`);
        }
      }
    });
  }

  /** Follows the Secret: every change another replica makes reaches the working copy (and changeToken) at once. */
  follow(): void {
    if (this.#closed || this.#watch) return;
    const { namespace, name } = this.#o.ref;
    const restart = () => {
      this.#watch = undefined;
      if (this.#closed) return;
      this.#restart = this.#o.clock.setTimer(WATCH_RESTART_MS, () => {
        // Catch up on anything missed while no watch was open, then watch again.
        void this.#serialized(async () => this.#install(await this.#read()))
          .catch((err) => this.#o.log?.warn({ reason: describeError(err) }, 'could not re-read the key store Secret'))
          .finally(() => this.follow());
      });
    };
    const onEvent = (phase: string, secret: V1Secret) => {
      if (phase !== 'ADDED' && phase !== 'MODIFIED' && phase !== 'DELETED') return;
      if (phase !== 'DELETED' && secret.metadata?.resourceVersion === this.#rv) return;
      void this.#serialized(async () => {
        if (phase === 'DELETED') {
          // Keep serving what we have: a deleted key store is an operator's mistake, not a rotation.
          this.#o.log?.error({ keys: this.location }, 'the key store Secret was deleted; keeping the keys in memory until it is restored');
          return;
        }
        this.#install(secret);
      }).catch((err) => this.#o.log?.warn({ reason: describeError(err) }, 'could not apply a key store Secret change'));
    };
    void this.#api
      .watch<V1Secret>(this.#collection, { fieldSelector: `metadata.name=${name}`, ...(this.#rv ? { resourceVersion: this.#rv } : {}) }, onEvent, () => restart())
      .then((controller) => {
        if (this.#closed) controller.abort();
        else this.#watch = controller;
      })
      .catch(() => restart());
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#restart?.cancel();
    this.#watch?.abort();
    await this.#queue.catch(() => undefined);
    await this.#api.close();
    if (this.#ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

export function loadKubeConfigFor(keysUrl: string, kubeconfigPath: string | undefined): KubeConfig {
  try {
    return kubeconfigPath ? loadKubeconfigFile(kubeconfigPath) : loadDefaultKubeConfig();
  } catch (err) {
    throw new MeshcaError('BAD_CONFIG', `--keys ${keysUrl}: cannot load ${kubeconfigPath ?? 'the Kubernetes configuration'}: ${describeError(err)}; pass --kubeconfig or run in a pod`, { cause: err });
  }
}

/** Size of a directory's files as a Secret would hold them (for sizing checks). */
export function directorySecretBytes(dir: string): number {
  statSync(dir);
  return secretDataBytes(readTree(dir));
}
