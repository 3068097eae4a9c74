// The one rule for an operator's root, applied the same by `ca init --external-root-cert` and
// `root prepare --external-root-cert`, and the one writer of the cacerts layout both commands end with.

import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCacertsFiles } from '../../src/ca/index.ts';
import { main } from '../../src/cli/main.ts';
import { tempDir } from '../helpers/serve.ts';

async function meshca(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const code = await main(args, { stdout: () => {}, stderr: (t) => (stderr += t) });
  return { code, stderr };
}

const dir = tempDir('meshca-operator-root-');
afterAll(() => dir.cleanup());
const at = (...p: string[]) => join(dir.path, ...p);

/** A self-signed certificate from openssl with the given extensions, and its key. */
function opensslRoot(name: string, extensions: readonly string[]): { cert: string; key: string } {
  const cert = at(`${name}.pem`);
  const key = at(`${name}-key.pem`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '30', '-subj', `/CN=${name}`, ...extensions.flatMap((e) => ['-addext', e]),
  ], { stdio: 'pipe' });
  return { cert, key };
}

beforeAll(async () => {
  expect((await meshca(['ca', 'init', '--keys', at('keys')])).code).toBe(0);
  expect((await meshca(['ca', 'init', '--keys', at('other-td'), '--trust-domain', 'example.org'])).code).toBe(0);
});

describe('an operator root, the same rule for ca init and root prepare', () => {
  const bad = (): ReadonlyArray<readonly [string, { cert: string; key: string }, RegExp]> => [
    ['an intermediate, not a self-signed root', { cert: at('keys', 'ca-cert.pem'), key: at('keys', 'ca-key.pem') }, /is not a self-signed CA certificate/],
    ['a self-signed certificate that is not a CA', opensslRoot('leaf', ['basicConstraints=critical,CA:FALSE']), /is not a self-signed CA certificate/],
    [
      'a CA that may not sign certificates (no keyCertSign)',
      opensslRoot('no-certsign', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature']),
      /cannot sign: .*keyCertSign|is not a self-signed CA certificate/,
    ],
    ['a root of another trust domain', { cert: at('other-td', 'root-cert.pem'), key: at('other-td', 'root-key.pem') }, /is for trust domain example\.org, not cluster\.local/],
    ['a key that is not the root\'s', { cert: at('keys', 'root-cert.pem'), key: at('other-td', 'root-key.pem') }, /does not match --external-root-cert/],
    ['two certificates', { cert: at('keys', 'cert-chain.pem'), key: at('keys', 'root-key.pem') }, /must hold exactly one certificate \(found 2\)/],
  ];

  it('refuses each bad root in both commands with the same reason, and writes nothing', async () => {
    for (const [what, root, rule] of bad()) {
      const fresh = at(`init-${what.replace(/\W+/g, '-')}`);
      const init = await meshca(['ca', 'init', '--keys', fresh, '--external-root-cert', root.cert, '--external-root-key', root.key]);
      expect({ what, code: init.code }).toEqual({ what, code: 1 });
      expect(init.stderr).toMatch(rule);
      expect(existsSync(join(fresh, 'ca-key.pem'))).toBe(false);

      const before = readFileSync(at('keys', 'root-cert.pem'), 'utf8');
      const prepare = await meshca(['root', 'prepare', '--keys', at('keys'), '--db', 'memory:', '--external-root-cert', root.cert, '--external-root-key', root.key]);
      expect({ what, code: prepare.code }).toEqual({ what, code: 1 });
      expect(prepare.stderr).toMatch(rule);
      expect(readFileSync(at('keys', 'root-cert.pem'), 'utf8')).toBe(before);
    }
  });

  it('accepts a good self-signed CA root in both', async () => {
    const good = opensslRoot('good', ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectAltName=URI:spiffe://cluster.local']);
    expect((await meshca(['ca', 'init', '--keys', at('good-init'), '--external-root-cert', good.cert, '--external-root-key', good.key])).code).toBe(0);
    const prepare = await meshca(['root', 'prepare', '--keys', at('keys'), '--db', 'memory:', '--external-root-cert', good.cert, '--external-root-key', good.key]);
    expect(prepare).toEqual({ code: 0, stderr: '' });
  });
});

describe('writeCacertsFiles', () => {
  it('writes the cacerts layout with keys 0600, removes a stale root key, and mirrors kubernetes.io/tls files that exist', () => {
    const out = at('written');
    const caKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const rootKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const pem = (f: string) => readFileSync(at('keys', f), 'utf8');
    const files = { bundlePem: pem('root-cert.pem'), chainPem: pem('ca-cert.pem'), rootPem: pem('root-cert.pem'), caKey };

    writeCacertsFiles(out, { ...files, rootKey });
    expect(statSync(join(out, 'ca-key.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(join(out, 'root-key.pem')).mode & 0o777).toBe(0o600);
    for (const f of ['root-cert.pem', 'ca-cert.pem', 'cert-chain.pem']) expect(statSync(join(out, f)).mode & 0o777).toBe(0o644);
    expect(readFileSync(join(out, 'cert-chain.pem'), 'utf8')).toBe(files.chainPem + files.rootPem);
    expect(readFileSync(join(out, 'ca-cert.pem'), 'utf8')).toBe(files.chainPem);
    expect(existsSync(join(out, 'tls.crt'))).toBe(false);

    writeFileSync(join(out, 'tls.crt'), '');
    const written = writeCacertsFiles(out, files);
    expect(existsSync(join(out, 'root-key.pem'))).toBe(false);
    expect(statSync(join(out, 'tls.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(out, 'tls.crt'), 'utf8')).toBe(files.chainPem);
    expect(readFileSync(join(out, 'ca.crt'), 'utf8')).toBe(files.bundlePem);
    expect(written.map((p) => p.slice(out.length + 1))).toEqual(['ca-key.pem', 'root-cert.pem', 'cert-chain.pem', 'ca-cert.pem', 'tls.key', 'tls.crt', 'ca.crt']);
  });
});
