// A CA under a root kept offline, with OpenSSL as the root's holder: `meshca ca csr` makes the key
// and CSR, `openssl x509 -req` signs it elsewhere, `meshca ca install` checks and installs it, and
// what the CA then issues verifies against the offline root. Each check of install has a refusal.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { opensslCsr, opensslVerify } from '../helpers/csr.ts';
import { tempDir } from '../helpers/serve.ts';

let work: { path: string; cleanup: () => void };
const at = (f: string) => join(work.path, f);

async function cli(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { env: {}, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: work.path, stdio: 'pipe' }).toString();

/** A self-signed root made by OpenSSL, as an offline CA would hold it. */
function makeRoot(name: string, opts: { pathLen?: number; trustDomain?: string } = {}): void {
  const bc = `basicConstraints=critical,CA:true${opts.pathLen !== undefined ? `,pathlen:${opts.pathLen}` : ''}`;
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '3650',
    '-subj', `/O=offline/CN=${name}`, '-addext', bc, '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', `subjectAltName=URI:spiffe://${opts.trustDomain ?? 'cluster.local'}`]);
}

/** The root's holder signs a CSR: `openssl x509 -req` with the extensions a CA certificate needs. */
function signCsr(csr: string, issuer: string, out: string, opts: { days?: number; pathLen?: number } = {}): void {
  const ext = at(`${out}.ext`);
  writeFileSync(ext, `basicConstraints=critical,CA:true${opts.pathLen !== undefined ? `,pathlen:${opts.pathLen}` : ''}\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectAltName=URI:spiffe://cluster.local\n`);
  openssl(['x509', '-req', '-in', csr, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-days', String(opts.days ?? 365), '-extfile', ext, '-out', out]);
}

beforeAll(() => {
  work = tempDir();
  makeRoot('root');
});
afterAll(() => work.cleanup());

describe('an offline root: ca csr → openssl → ca install', () => {
  it('installs the intermediate the offline root signed; certificates from it verify against that root, and its key never left', async () => {
    const keys = at('keys');
    const csr = await cli(['ca', 'csr', '--keys', keys]);
    expect(csr.code).toBe(0);
    expect(csr.stdout).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    writeFileSync(at('inter.csr'), csr.stdout);
    // The CSR is well formed and asks for a CA (OpenSSL's view).
    const text = openssl(['req', '-in', 'inter.csr', '-noout', '-text', '-verify']);
    expect(text).toMatch(/CA:TRUE, pathlen:0/);
    expect(text).toMatch(/URI:spiffe:\/\/cluster\.local/);
    signCsr('inter.csr', 'root', 'inter.pem');

    const r = await cli(['ca', 'install', '--keys', keys, '--cert', at('inter.pem'), '--chain', at('root.pem')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/installed intermediate .* under the offline root/);
    expect(existsSync(join(keys, 'root-key.pem'))).toBe(false);
    expect(existsSync(join(keys, 'pending'))).toBe(false);
    expect(readFileSync(join(keys, 'root-cert.pem'), 'utf8')).toBe(readFileSync(at('root.pem'), 'utf8'));

    writeFileSync(at('w.csr'), opensslCsr().csrPem);
    const signed = await cli(['sign', '--keys', keys, '--csr', at('w.csr'), '--id', 'spiffe://cluster.local/ns/a/sa/b', '--db', 'memory:']);
    expect(signed.code).toBe(0);
    const [leaf, inter] = signed.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!;
    expect(opensslVerify(readFileSync(at('root.pem'), 'utf8'), inter!, leaf!)).toContain('OK');
  });

  it('refuses an intermediate for another key, one that expires within --max-ttl, a chain without its root, and a path longer than a pathlen allows', async () => {
    const keys = at('keys2');
    writeFileSync(at('req2.csr'), (await cli(['ca', 'csr', '--keys', keys])).stdout);
    const install = (cert: string, chain: string, extra: string[] = []) => cli(['ca', 'install', '--keys', keys, '--cert', at(cert), '--chain', at(chain), ...extra]);

    // Another key's certificate.
    writeFileSync(at('other.csr'), (await cli(['ca', 'csr', '--keys', at('keys-other')])).stdout);
    signCsr('other.csr', 'root', 'other.pem');
    expect((await install('other.pem', 'root.pem')).stderr).toMatch(/is not for the key of the pending request/);

    // Valid for one day only, while leaves may live 48 h.
    signCsr('req2.csr', 'root', 'short.pem', { days: 1 });
    expect((await install('short.pem', 'root.pem', ['--max-ttl', '48h'])).stderr).toMatch(/must cover the longest leaf lifetime \(--max-ttl\)/);

    // A chain that does not reach the root.
    signCsr('req2.csr', 'root', 'good.pem');
    makeRoot('stranger');
    expect((await install('good.pem', 'stranger.pem')).stderr).toMatch(/is not signed by|does not chain/);
    writeFileSync(at('empty-chain.pem'), readFileSync(at('good.pem')));
    expect((await install('good.pem', 'empty-chain.pem')).stderr).toMatch(/must end at exactly one self-signed root/);

    // root (pathlen 0) → mid → ours: the root allows no CA below its direct child.
    makeRoot('tight', { pathLen: 0 });
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'mid.key', '-out', 'mid.csr', '-subj', '/CN=mid']);
    signCsr('mid.csr', 'tight', 'mid.pem');
    signCsr('req2.csr', 'mid', 'deep.pem');
    writeFileSync(at('deep-chain.pem'), readFileSync(at('mid.pem'), 'utf8') + readFileSync(at('tight.pem'), 'utf8'));
    expect((await install('deep.pem', 'deep-chain.pem')).stderr).toMatch(/allows 0 CA certificate\(s\) below it, but 1 are on the path/);

    // Nothing was installed by any of these; the good one still installs.
    expect(existsSync(join(keys, 'ca-cert.pem'))).toBe(false);
    expect((await install('good.pem', 'root.pem')).code).toBe(0);
    // A second install into a CA is a rotation, not an install.
    expect((await install('good.pem', 'root.pem')).stderr).toMatch(/already holds a CA; to move it under the offline root, rotate/);
  });

  it('root prepare --cert --chain: a running CA rotates to an offline root in two steps, and then signs under it', async () => {
    const keys = at('keys3');
    expect((await cli(['ca', 'init', '--keys', keys])).code).toBe(0);
    makeRoot('next');
    writeFileSync(at('next.csr'), (await cli(['ca', 'csr', '--keys', keys])).stdout);
    signCsr('next.csr', 'next', 'next-inter.pem');
    const prepared = await cli(['root', 'prepare', '--keys', keys, '--cert', at('next-inter.pem'), '--chain', at('next.pem'), '--db', 'memory:']);
    expect(prepared.stderr).toBe('');
    expect(prepared.stdout).toMatch(/prepared the offline root/);
    expect(existsSync(join(keys, 'pending'))).toBe(false);
    // Both roots are trusted now; the old one still signs.
    expect(readFileSync(join(keys, 'root-cert.pem'), 'utf8')).toContain(readFileSync(at('next.pem'), 'utf8').trim());
    const status = JSON.parse((await cli(['root', 'status', '--keys', keys, '--json'])).stdout) as { roots: Array<{ state: string; keyHeld: boolean }> };
    expect(status.roots.map((r) => [r.state, r.keyHeld])).toEqual([['active', true], ['prepared', false]]);
    expect((await cli(['root', 'activate', '--keys', keys, '--force', '--db', 'memory:'])).code).toBe(0);
    writeFileSync(at('w3.csr'), opensslCsr().csrPem);
    const signed = await cli(['sign', '--keys', keys, '--csr', at('w3.csr'), '--id', 'spiffe://cluster.local/ns/a/sa/b', '--db', 'memory:']);
    const [leaf, inter] = signed.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!;
    expect(opensslVerify(readFileSync(at('next.pem'), 'utf8'), inter!, leaf!)).toContain('OK');
  });
});
