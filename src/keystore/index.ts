// Public face of src/keystore: opening the key store `--keys` names — a directory, or one
// Kubernetes Secret (`k8s-secret:<namespace>/<name>`). Either way callers get a key directory to
// read (`dir`) and a KeyStore for rotation; the Kubernetes client is loaded only for a Secret.

import type { Logger } from '../observability/index.ts';
import { DirectoryKeyStore, type KeyStore } from '../rotation/index.ts';
import type { Clock } from '../time/index.ts';

export const SECRET_KEYS_PREFIX = 'k8s-secret:';

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
    return { location: keys, dir: keys, store: new DirectoryKeyStore(keys), remote: false, publish: async () => true, follow: () => undefined, close: async () => undefined };
  }
  const { SecretKeyStore, loadKubeConfigFor, parseSecretRef } = await import('./k8s_secret.ts');
  const ref = parseSecretRef(keys);
  const store = await SecretKeyStore.open({ ref, kubeConfig: loadKubeConfigFor(keys, o.kubeconfig), clock: o.clock, ...(o.log ? { log: o.log } : {}) });
  return { location: store.location, dir: store.dir, store, remote: true, publish: () => store.publish(), follow: () => store.follow(), close: () => store.close() };
}
