// Public face of src/keystore: opening the key store `--keys` names — a directory, or one
// Kubernetes Secret (`k8s-secret:<namespace>/<name>`). Either way callers get a key directory to
// read (`dir`) and a KeyStore for rotation; the Kubernetes client is loaded only for a Secret.

import { MeshcaError } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import { DirectoryKeyStore, type KeyStore } from '../rotation/index.ts';
import type { Clock } from '../time/index.ts';

export const SECRET_KEYS_PREFIX = 'k8s-secret:';
const SETTLE_ATTEMPTS = 3;

export interface OpenedKeyStore {
  /** What --keys said, for messages. */
  readonly location: string;
  /** A key directory with the store's files (for a Secret: the private working copy). */
  readonly dir: string;
  readonly store: KeyStore;
  /** True for a Secret: files written into `dir` outside a transaction must be published. */
  readonly remote: boolean;
  /** Publishes files written into `dir` outside a transaction; false if someone else's won (`dir` now holds theirs). */
  publish(): Promise<boolean>;
  /**
   * Makes files that every user of the store must share (the ledger key, a first CA) and publishes
   * them; when someone else published theirs first, `dir` takes theirs and `make` runs again on it
   * (so it must only create what is missing).
   */
  settle(make: () => void | Promise<void>): Promise<void>;
  /** Keeps `dir` following changes made elsewhere (a watch on the Secret); a directory needs nothing. */
  follow(): void;
  close(): Promise<void>;
}

export interface OpenKeyStoreOptions {
  readonly kubeconfig?: string;
  readonly clock: Clock;
  readonly log?: Logger;
}

export function isSecretKeyStore(keys: string): boolean {
  return keys.startsWith(SECRET_KEYS_PREFIX);
}

export async function openKeyStore(keys: string, o: OpenKeyStoreOptions): Promise<OpenedKeyStore> {
  if (!isSecretKeyStore(keys)) {
    return { location: keys, dir: keys, store: new DirectoryKeyStore(keys), remote: false, publish: async () => true, settle: async (make) => make(), follow: () => undefined, close: async () => undefined };
  }
  const { SecretKeyStore, loadKubeConfigFor, parseSecretRef } = await import('./k8s_secret.ts');
  const ref = parseSecretRef(keys);
  const store = await SecretKeyStore.open({ ref, kubeConfig: loadKubeConfigFor(keys, o.kubeconfig), clock: o.clock, ...(o.log ? { log: o.log } : {}) });
  const settle = async (make: () => void | Promise<void>): Promise<void> => {
    for (let attempt = 0; attempt < SETTLE_ATTEMPTS; attempt++) {
      await make();
      if (await store.publish()) return;
      o.log?.info({ keys: store.location }, 'someone else wrote the key store first; using theirs');
    }
    throw new MeshcaError('KEYS_MISSING', `the key store ${store.location} kept changing while this started; run it again`);
  };
  return { location: store.location, dir: store.dir, store, remote: true, publish: () => store.publish(), settle, follow: () => store.follow(), close: () => store.close() };
}
