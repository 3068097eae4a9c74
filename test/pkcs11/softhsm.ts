// SoftHSM2 for tests: one token directory per test process (SoftHSM reads SOFTHSM2_CONF once, when
// the module initialises). Tests skip, saying why, only when softhsm2 is not installed; CI installs it.

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_MODULE = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/local/lib/softhsm/libsofthsm2.so'].find((p) => existsSync(p));

function hasUtil(): boolean {
  try {
    execFileSync('softhsm2-util', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function hasBinding(): boolean {
  try {
    createRequire(import.meta.url)('pkcs11js');
    return true;
  } catch {
    return false;
  }
}

/**
 * Why the SoftHSM tests cannot run here, or undefined when they can. CI (CI=true) installs both, so
 * there a missing binding fails the tests instead of skipping them.
 */
export const SOFTHSM_MISSING = !SOFTHSM_MODULE || !hasUtil()
  ? 'softhsm2 is not installed (apt-get install softhsm2; .ci/run installs it)'
  : !hasBinding() && process.env.CI !== 'true'
    ? 'the pkcs11js binding is not installed in node_modules (npm ci builds it)'
    : undefined;

export interface SoftHsm {
  readonly modulePath: string;
  readonly dir: string;
  readonly pinFile: string;
  readonly pin: string;
  /** A --signer URI for `label` with object `object`. */
  signerUri(label: string, object?: string): string;
  cleanup(): void;
}

/** Makes a token directory with the given token labels (before the module is first loaded in this process). */
export function createSoftHsm(labels: readonly string[], pin = '4321'): SoftHsm {
  if (!SOFTHSM_MODULE) throw new Error(SOFTHSM_MISSING);
  const dir = mkdtempSync(join(tmpdir(), 'meshca-softhsm-'));
  mkdirSync(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  for (const label of labels) {
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', '87654321'], { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: 'ignore' });
  }
  const pinFile = join(dir, 'pin');
  writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
  return {
    modulePath: SOFTHSM_MODULE,
    dir,
    pinFile,
    pin,
    signerUri: (label, object = 'meshca-intermediate') => `pkcs11:token=${label};object=${object}?module-path=${SOFTHSM_MODULE}&pin-source=${pinFile}`,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The real module, wrapped so a test can pull the token out (every call fails CKR_DEVICE_REMOVED) and put it back. */
export function pullableModule(modulePath: string): { api: import('../../src/pkcs11/index.ts').Pkcs11Api; pull(pulled: boolean): void } {
  type Api = import('../../src/pkcs11/index.ts').Pkcs11Api;
  const real = new (createRequire(import.meta.url)('pkcs11js') as { PKCS11: new () => Api }).PKCS11();
  real.load(modulePath);
  let pulled = false;
  const api = new Proxy(real, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (pulled && prop !== 'C_CloseSession' && prop !== 'C_Initialize') throw Object.assign(new Error('CKR_DEVICE_REMOVED'), { code: 0x32 });
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { api, pull: (p) => void (pulled = p) };
}
