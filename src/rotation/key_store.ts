// The key store in a directory: Istio's cacerts files describe the ACTIVE chain (root-cert.pem is the
// whole trust bundle), and rotation/ beside them keeps the slot state and every slot's material.
// Every write is atomic, keys 0600; transitions run under an exclusive lock with a version check.

import { X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CACERTS_FILES, TLS_FILES, inspectKeyDirectory, readCaKeyFile, readKeyDirectory, writeCaKeyFile, writeCacertsFiles } from '../ca/index.ts';
import { MeshcaError } from '../errors/index.ts';
import { assertKeyTreeProtected, decodeCertificates, isSelfSigned, keyIdOf, PUBLIC_FILE_MODE, readPrivateKeyFile, toPem, writeFileAtomic, writePrivateKeyFile, isKeyReference, type CaPrivateKey } from '../pki/index.ts';
import { DirectoryDenyListStore, type DenyListStore } from './deny_store.ts';
import { withFileLock } from './lock.ts';
import { activeSlotOf } from './slots.ts';
import { trustBundleRoots } from './schedule.ts';
import { parseRotationState, serializeRotationState, type IntermediateCertificate, type RootCertificate, type RotationState } from './state.ts';

export const ROTATION_DIR = 'rotation';
export const STATE_FILE = 'state.json';
const LOCK_FILE = '.lock';
const ROOTS_DIR = 'roots';
const INTERMEDIATES_DIR = 'intermediates';
const SLOT_CERT = { root: CACERTS_FILES.rootCert, intermediate: CACERTS_FILES.caCert } as const;
const SLOT_KEY = { root: CACERTS_FILES.rootKey, intermediate: CACERTS_FILES.caKey } as const;

/** A slot's certificate (for intermediates: the issuing certificate and any further ones, no root) and key (an intermediate's may be in a token). */
export interface SlotMaterial {
  readonly certPem: string;
  readonly key?: CaPrivateKey;
}

/** The store as read at one moment: state plus lazy access to each slot's material. */
export interface KeyStoreSnapshot {
  readonly state: RotationState;
  /** True when no rotation state exists yet and the slots were read from the cacerts files. */
  readonly adopted: boolean;
  rootCertPem(keyId: string): string;
  rootKey(keyId: string): KeyObject | undefined;
  intermediateChainPem(keyId: string): string;
  intermediateKey(keyId: string): CaPrivateKey;
}

export interface KeyStoreChange {
  readonly roots: RotationState['roots'];
  readonly intermediates: RotationState['intermediates'];
  readonly newRoots?: ReadonlyMap<string, SlotMaterial>;
  readonly newIntermediates?: ReadonlyMap<string, SlotMaterial>;
}

export type Transition<T> = (current: KeyStoreSnapshot) => Promise<{ readonly change?: KeyStoreChange; readonly result: T }>;

/** Where slots live; a Kubernetes Secret store can implement the same four methods. */
export interface KeyStore {
  readonly location: string;
  snapshot(nowMs: number): KeyStoreSnapshot;
  /** Runs `transition` on the current snapshot and commits its change atomically, or not at all. */
  transact<T>(transition: Transition<T>, nowMs: () => number): Promise<T>;
  /** Cheap and different whenever the store changed (for pollers). */
  changeToken(): string;
  /** The runtime deny list kept beside the CA material (its own file, its own lock and change token). */
  readonly denyList: DenyListStore;
}

export function certificateFacts(pem: string): { keyId: string; subject: string; notBeforeMs: number; notAfterMs: number; cert: X509Certificate } {
  const der = decodeCertificates(pem, 'certificate')[0]!;
  const cert = new X509Certificate(der);
  return { keyId: keyIdOf(der), subject: cert.subject.replace(/\n/g, ', '), notBeforeMs: Date.parse(cert.validFrom), notAfterMs: Date.parse(cert.validTo), cert };
}

class Material {
  readonly roots = new Map<string, SlotMaterial>();
  readonly intermediates = new Map<string, SlotMaterial>();
}

/** Reads the cacerts (or kubernetes.io/tls) files as slots: their chain active, other roots superseded. */
function adopt(dir: string, nowMs: number): { state: RotationState; material: Material } {
  const m = readKeyDirectory(dir);
  const material = new Material();
  const rootPems = decodeCertificates(m.rootsPem, `${dir}/${CACERTS_FILES.rootCert}`).map((d) => toPem(d, 'CERTIFICATE'));
  const rootCerts = rootPems.map((p) => new X509Certificate(p));
  const chainCerts = decodeCertificates(m.chainPem, `${dir}/${CACERTS_FILES.certChain}`).map((d) => new X509Certificate(d)).filter((c) => !isSelfSigned(c));
  if (chainCerts.length === 0) throw new MeshcaError('BAD_CHAIN', `key directory ${dir}: the CA certificate chain holds no intermediate`);
  const top = chainCerts[chainCerts.length - 1]!;
  const activeIndex = rootCerts.findIndex((r) => top.checkIssued(r) && top.verify(r.publicKey));
  if (activeIndex < 0) throw new MeshcaError('BAD_CHAIN', `key directory ${dir}: the CA certificate does not chain to any root in ${CACERTS_FILES.rootCert}`);
  const roots = rootPems.map((pem, i) => {
    const f = certificateFacts(pem);
    const isActive = i === activeIndex;
    const key = isActive && m.rootKey && rootCerts[i]!.checkPrivateKey(m.rootKey) ? m.rootKey : undefined;
    material.roots.set(f.keyId, { certPem: pem, ...(key ? { key } : {}) });
    const cert: RootCertificate = { keyId: f.keyId, subject: f.subject, notBeforeMs: f.notBeforeMs, notAfterMs: f.notAfterMs, hasKey: key !== undefined };
    // Extra roots in an Istio bundle are someone's earlier root: trusted, signing nothing here.
    return isActive
      ? { state: 'active' as const, cert, preparedAtMs: f.notBeforeMs, activatedAtMs: f.notBeforeMs }
      : { state: 'superseded' as const, cert, preparedAtMs: f.notBeforeMs, supersededAtMs: nowMs, maxLeafTtlMs: 0 };
  });
  const chainPem = chainCerts.map((c) => toPem(c.raw, 'CERTIFICATE')).join('');
  const f = certificateFacts(chainPem);
  material.intermediates.set(f.keyId, { certPem: chainPem, key: m.caKey });
  const intermediate: IntermediateCertificate = {
    keyId: f.keyId,
    subject: f.subject,
    notBeforeMs: f.notBeforeMs,
    notAfterMs: f.notAfterMs,
    hasKey: true,
    rootKeyId: roots[activeIndex]!.cert.keyId,
  };
  return {
    state: { version: 0, updatedAtMs: nowMs, roots, intermediates: [{ state: 'active', cert: intermediate, preparedAtMs: f.notBeforeMs, activatedAtMs: f.notBeforeMs }] },
    material,
  };
}

function statToken(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return '-';
  }
}

export class DirectoryKeyStore implements KeyStore {
  readonly location: string;
  readonly #rotationDir: string;
  readonly denyList: DenyListStore;

  constructor(dir: string) {
    this.location = dir;
    this.#rotationDir = join(dir, ROTATION_DIR);
    this.denyList = new DirectoryDenyListStore(dir);
  }

  get statePath(): string {
    return join(this.#rotationDir, STATE_FILE);
  }

  #slotDir(kind: 'root' | 'intermediate', keyId: string): string {
    return join(this.#rotationDir, kind === 'root' ? ROOTS_DIR : INTERMEDIATES_DIR, keyId);
  }

  #readSlot(kind: 'root' | 'intermediate', keyId: string, cache: Map<string, SlotMaterial>): SlotMaterial {
    const held = cache.get(keyId);
    if (held) return held;
    const dir = this.#slotDir(kind, keyId);
    let certPem: string;
    try {
      certPem = readFileSync(join(dir, SLOT_CERT[kind]), 'utf8');
    } catch (err) {
      throw new MeshcaError('KEYS_MISSING', `the ${kind} ${keyId.slice(0, 16)}… is in the rotation state but its certificate is missing from ${dir}`, { cause: err });
    }
    const hasKey = existsSync(join(dir, SLOT_KEY[kind])) || (kind === 'intermediate' && existsSync(join(dir, CACERTS_FILES.caKeyRef)));
    const key = !hasKey ? undefined : kind === 'intermediate' ? readCaKeyFile(dir, CACERTS_FILES.caKey, CACERTS_FILES.caKeyRef) : readPrivateKeyFile(join(dir, SLOT_KEY[kind]));
    const material: SlotMaterial = { certPem, ...(key ? { key } : {}) };
    cache.set(keyId, material);
    return material;
  }

  #snapshotOf(state: RotationState, material: Material, adopted: boolean): KeyStoreSnapshot {
    return {
      state,
      adopted,
      rootCertPem: (id) => this.#readSlot('root', id, material.roots).certPem,
      rootKey: (id) => {
        const key = this.#readSlot('root', id, material.roots).key;
        // A root's key is never kept in a token by meshca (an offline root keeps it elsewhere).
        return key && !isKeyReference(key) ? key : undefined;
      },
      intermediateChainPem: (id) => this.#readSlot('intermediate', id, material.intermediates).certPem,
      intermediateKey: (id) => {
        const key = this.#readSlot('intermediate', id, material.intermediates).key;
        if (!key) throw new MeshcaError('KEYS_MISSING', `the intermediate ${id.slice(0, 16)}… has no private key in the key store`);
        return key;
      },
    };
  }

  #readState(): RotationState | undefined {
    let text: string;
    try {
      text = readFileSync(this.statePath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return parseRotationState(text);
  }

  snapshot(nowMs: number): KeyStoreSnapshot {
    assertKeyTreeProtected(this.location);
    const state = this.#readState();
    if (state) return this.#snapshotOf(state, new Material(), false);
    const adopted = adopt(this.location, nowMs);
    return this.#snapshotOf(adopted.state, adopted.material, true);
  }

  changeToken(): string {
    const files = [this.statePath, ...[CACERTS_FILES.rootCert, CACERTS_FILES.caCert, CACERTS_FILES.caKey, CACERTS_FILES.certChain, TLS_FILES.cert, TLS_FILES.ca].map((f) => join(this.location, f))];
    // With a state file only it matters; without one, manual edits of the cacerts files do.
    return existsSync(this.statePath) ? statToken(this.statePath) : files.map(statToken).join('|');
  }

  async transact<T>(transition: Transition<T>, nowMs: () => number): Promise<T> {
    if (inspectKeyDirectory(this.location) === 'empty') {
      throw new MeshcaError('KEYS_MISSING', `key directory ${this.location} holds no CA; run "meshca ca init --keys ${this.location}" first`);
    }
    mkdirSync(this.#rotationDir, { recursive: true, mode: 0o700 });
    return withFileLock(join(this.#rotationDir, LOCK_FILE), async () => {
      const current = this.snapshot(nowMs());
      const { change, result } = await transition(current);
      if (!change) return result;
      const next: RotationState = { version: current.state.version + 1, updatedAtMs: nowMs(), roots: change.roots, intermediates: change.intermediates };
      this.#writeMaterial(current, change);
      // Compare-and-swap: the lock makes this hold, the check makes a broken lock visible.
      const onDisk = this.#readState()?.version ?? 0;
      if (onDisk !== current.state.version) {
        throw new MeshcaError('ROTATION_REFUSED', `the key store changed underneath this step (version ${current.state.version} → ${onDisk}); run it again`);
      }
      writeFileAtomic(this.statePath, serializeRotationState(next), PUBLIC_FILE_MODE);
      this.#writeIstioFiles(next, this.snapshot(nowMs()));
      this.#dropRetiredKeys(next);
      return result;
    });
  }

  /**
   * `ca init --force`: runs `replace` under the rotation lock, handing it `forgetSlots`, which drops
   * the rotation state and every slot's material (state first: from then on readers adopt the
   * cacerts files, which `replace` then overwrites). Without it serve and root status would keep
   * the old slots while sign used the new files.
   */
  async replaceCa<T>(replace: (forgetSlots: () => void) => Promise<T>): Promise<T> {
    if (!existsSync(this.#rotationDir)) return replace(() => undefined);
    return withFileLock(join(this.#rotationDir, LOCK_FILE), () =>
      replace(() => {
        rmSync(this.statePath, { force: true });
        rmSync(join(this.#rotationDir, ROOTS_DIR), { recursive: true, force: true });
        rmSync(join(this.#rotationDir, INTERMEDIATES_DIR), { recursive: true, force: true });
      }),
    );
  }

  #writeMaterial(current: KeyStoreSnapshot, change: KeyStoreChange): void {
    const write = (kind: 'root' | 'intermediate', keyId: string, m: SlotMaterial) => {
      const dir = this.#slotDir(kind, keyId);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // Key first: a certificate on disk always has its key beside it.
      if (m.key && kind === 'intermediate') writeCaKeyFile(dir, CACERTS_FILES.caKey, CACERTS_FILES.caKeyRef, m.key);
      else if (m.key && !isKeyReference(m.key)) writePrivateKeyFile(join(dir, SLOT_KEY[kind]), m.key);
      writeFileAtomic(join(dir, SLOT_CERT[kind]), m.certPem, PUBLIC_FILE_MODE);
    };
    if (current.adopted) {
      for (const s of current.state.roots) {
        const key = current.rootKey(s.cert.keyId);
        write('root', s.cert.keyId, { certPem: current.rootCertPem(s.cert.keyId), ...(key ? { key } : {}) });
      }
      for (const s of current.state.intermediates) write('intermediate', s.cert.keyId, { certPem: current.intermediateChainPem(s.cert.keyId), key: current.intermediateKey(s.cert.keyId) });
    }
    for (const [id, m] of change.newRoots ?? []) write('root', id, m);
    for (const [id, m] of change.newIntermediates ?? []) write('intermediate', id, m);
  }

  /** A retired key must never sign again: its private key file goes; its certificate stays as history. */
  #dropRetiredKeys(state: RotationState): void {
    const drop = (kind: 'root' | 'intermediate', keyId: string) => {
      // A token's key stays in the token (its owner destroys it); the reference to it goes.
      for (const file of kind === 'intermediate' ? [SLOT_KEY[kind], CACERTS_FILES.caKeyRef] : [SLOT_KEY[kind]]) {
        const path = join(this.#slotDir(kind, keyId), file);
        if (existsSync(path)) unlinkSync(path);
      }
    };
    for (const s of state.roots) if (s.state === 'retired') drop('root', s.cert.keyId);
    for (const s of state.intermediates) if (s.state === 'retired') drop('intermediate', s.cert.keyId);
  }

  /** Rewrites the cacerts files so Istio-style readers see the active chain and the whole bundle. */
  #writeIstioFiles(state: RotationState, store: KeyStoreSnapshot): void {
    const root = activeSlotOf(state.roots, 'root');
    const intermediate = activeSlotOf(state.intermediates, 'intermediate');
    const chainPem = store.intermediateChainPem(intermediate.cert.keyId);
    const rootPem = store.rootCertPem(root.cert.keyId);
    const bundlePem = trustBundleRoots(state).map((s) => store.rootCertPem(s.cert.keyId)).join('');
    const rootKey = store.rootKey(root.cert.keyId);
    writeCacertsFiles(this.location, { bundlePem, chainPem, rootPem, caKey: store.intermediateKey(intermediate.cert.keyId), ...(rootKey ? { rootKey } : {}) });
  }
}
