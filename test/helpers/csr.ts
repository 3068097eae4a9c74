// CSRs for tests, made by OpenSSL (an independent implementation) so our parser is tested against
// what real clients send.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCsr {
  csrPem: string;
  keyPem: string;
}

export type OpensslKeySpec = 'ec-p256' | 'ec-p384' | 'ec-p521' | 'rsa-1024' | 'rsa-2048' | 'rsa-4096' | 'ed25519';

export function opensslCsr(key: OpensslKeySpec = 'ec-p256', opts: { subject?: string; san?: string; digest?: string } = {}): TestCsr {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-csr-'));
  try {
    const keyArgs =
      key === 'ed25519'
        ? ['-newkey', 'ed25519']
        : key.startsWith('rsa')
          ? ['-newkey', `rsa:${key.slice(4)}`]
          : ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${key === 'ec-p256' ? 'P-256' : key === 'ec-p384' ? 'P-384' : 'P-521'}`];
    execFileSync('openssl', [
      'req', '-new', ...keyArgs, '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'csr.pem'),
      '-subj', opts.subject ?? '/CN=ignored',
      ...(opts.san ? ['-addext', `subjectAltName=${opts.san}`] : []),
      ...(opts.digest ? [`-${opts.digest}`] : []),
    ], { stdio: 'pipe' });
    return { csrPem: readFileSync(join(dir, 'csr.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The PEM certificates in a bundle, each as its own PEM string. */
export function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

/** `openssl verify -CAfile root -untrusted chain leaf`; returns openssl's output, throws on failure. */
export function opensslVerify(rootPem: string, intermediatesPem: string, leafPem: string, extra: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-verify-'));
  try {
    writeFileSync(join(dir, 'root.pem'), rootPem);
    writeFileSync(join(dir, 'chain.pem'), intermediatesPem);
    writeFileSync(join(dir, 'leaf.pem'), leafPem);
    const args = ['verify', ...extra, '-CAfile', join(dir, 'root.pem'), ...(intermediatesPem ? ['-untrusted', join(dir, 'chain.pem')] : []), join(dir, 'leaf.pem')];
    return execFileSync('openssl', args, { stdio: 'pipe' }).toString();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
