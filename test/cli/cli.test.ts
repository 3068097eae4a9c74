// The command line as an operator uses it: real processes, real files, OpenSSL checking the output.

import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { COMMANDS } from '../../src/cli/commands/index.ts';
import { opensslCsr, opensslVerify } from '../helpers/csr.ts';
import { runMeshca, tempDir } from '../helpers/serve.ts';

let work: { path: string; cleanup: () => void };
let keys: string;
let csrFile: string;

/** Runs the CLI in-process (fast), capturing output. */
async function cli(args: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { env, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  work = tempDir();
  keys = join(work.path, 'keys');
  csrFile = join(work.path, 'w.csr');
  writeFileSync(csrFile, opensslCsr('ec-p256', { subject: '/CN=root-please', san: 'URI:spiffe://cluster.local/ns/kube-system/sa/admin' }).csrPem);
  const r = await runMeshca(['ca', 'init', '--keys', keys]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/made a root and intermediate CA for spiffe:\/\/cluster.local/);
});
afterAll(() => work.cleanup());

describe('meshca ca init', () => {
  it("writes Istio's cacerts layout with 0600 private keys", () => {
    for (const f of ['root-cert.pem', 'ca-cert.pem', 'cert-chain.pem']) expect(statSync(join(keys, f)).mode & 0o777).toBe(0o644);
    for (const f of ['ca-key.pem', 'root-key.pem']) expect(statSync(join(keys, f)).mode & 0o777).toBe(0o600);
    const chain = readFileSync(join(keys, 'cert-chain.pem'), 'utf8');
    expect(chain.startsWith(readFileSync(join(keys, 'ca-cert.pem'), 'utf8'))).toBe(true);
    expect(chain.endsWith(readFileSync(join(keys, 'root-cert.pem'), 'utf8'))).toBe(true);
    const root = new X509Certificate(readFileSync(join(keys, 'root-cert.pem')));
    const years = (Date.parse(root.validTo) - Date.now()) / (365 * 86400_000);
    expect(years).toBeGreaterThan(9.9);
    const inter = new X509Certificate(readFileSync(join(keys, 'ca-cert.pem')));
    expect((Date.parse(inter.validTo) - Date.now()) / 86400_000).toBeGreaterThan(364);
  });

  it('refuses to overwrite an existing CA without --force', async () => {
    const r = await cli(['ca', 'init', '--keys', keys]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^meshca ca init: key directory .* already holds a CA; to change its root without breaking workloads rotate it \("meshca root prepare", .* or pass --force/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('makes only an intermediate under an existing root, leaving the root key where it is', async () => {
    const d = join(work.path, 'plugged');
    const r = await cli(['ca', 'init', '--keys', d, '--external-root-cert', join(keys, 'root-cert.pem'), '--external-root-key', join(keys, 'root-key.pem'), '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ madeRoot: false });
    expect(() => statSync(join(d, 'root-key.pem'))).toThrow();
    expect(readFileSync(join(d, 'root-cert.pem'), 'utf8')).toBe(readFileSync(join(keys, 'root-cert.pem'), 'utf8'));
    expect(opensslVerify(readFileSync(join(keys, 'root-cert.pem'), 'utf8'), '', readFileSync(join(d, 'ca-cert.pem'), 'utf8'))).toContain('OK');
  });

  it('supports other key types', async () => {
    const d = join(work.path, 'p384');
    expect((await cli(['ca', 'init', '--keys', d, '--key-type', 'ec-p384'])).code).toBe(0);
    expect(new X509Certificate(readFileSync(join(d, 'ca-cert.pem'))).publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
  });
});

describe('meshca sign', () => {
  it('prints a chain that openssl verifies, with the --id identity and not the CSR claims', async () => {
    const r = await runMeshca(['sign', '--keys', keys, '--csr', csrFile, '--id', 'spiffe://cluster.local/ns/shop/sa/web', '--ttl', '2h', '--db', `sqlite:${join(work.path, 'ledger.db')}`]);
    expect(r.code).toBe(0);
    const certs = r.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g)!;
    expect(certs).toHaveLength(3);
    expect(opensslVerify(readFileSync(join(keys, 'root-cert.pem'), 'utf8'), readFileSync(join(keys, 'cert-chain.pem'), 'utf8'), certs[0]!)).toContain('OK');
    const leaf = new X509Certificate(certs[0]!);
    expect(leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/web');
    expect(Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)).toBe(2 * 3600_000 + 60_000);
    expect(r.stderr).toMatch(/^issued spiffe:\/\/cluster.local\/ns\/shop\/sa\/web serial [0-9a-f]+ until /);
  });

  it.each([
    [['--ttl', '48h'], /requested TTL 48h exceeds the maximum 24h/],
    [['--ttl', 'soon'], /--ttl: "soon" is not a duration/],
    [['--id', 'spiffe://other.domain/ns/a/sa/b'], /not in trust domain cluster.local, the one the CA in .* signs for/],
    [['--id', 'spiffe://cluster.local/ns/../sa/b'], /path segment "\.\." is not allowed/],
    [['--id', 'spiffe://cluster.local'], /spiffe:\/\/cluster\.local is a trust domain ID; a workload's SPIFFE ID needs a path/],
    [['--csr', '/nonexistent.csr'], /--csr \/nonexistent.csr: cannot read the file \(ENOENT\)/],
  ])('refuses %j with one line naming the problem', async (extra, message) => {
    const args = ['sign', '--keys', keys, '--csr', csrFile, '--id', 'spiffe://cluster.local/ns/shop/sa/web', '--db', 'memory:'];
    for (let i = 0; i < extra.length; i += 2) {
      const at = args.indexOf(extra[i]!);
      if (at >= 0) args[at + 1] = extra[i + 1]!;
      else args.push(extra[i]!, extra[i + 1]!);
    }
    const r = await cli(args);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses to use a CA key that others can read', async () => {
    const d = join(work.path, 'loose');
    await cli(['ca', 'init', '--keys', d]);
    chmodSync(join(d, 'ca-key.pem'), 0o644);
    const r = await cli(['sign', '--keys', d, '--csr', csrFile, '--id', 'spiffe://cluster.local/ns/a/sa/b', '--db', 'memory:']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ca-key.pem is readable by group or others \(mode 0644\); run "chmod 600/);
  });

  it('requires --csr and --id', async () => {
    const r = await cli(['sign', '--keys', keys]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--csr is required/);
  });
});

describe('settings', () => {
  it('take flags over MESHCA_* variables over the YAML file, and name a bad setting', async () => {
    const yaml = join(work.path, 'meshca.yaml');
    writeFileSync(yaml, 'trust-domain: from-yaml.example\nmax-ttl: 2h\n');
    const args = ['sign', '--config', yaml, '--keys', keys, '--csr', csrFile, '--id', 'spiffe://cluster.local/ns/a/sa/b', '--db', 'memory:', '--ttl', '3h'];
    // YAML says the trust domain is from-yaml.example: it disagrees with the key store's.
    expect((await cli(args)).stderr).toMatch(/--trust-domain from-yaml.example disagrees with the key store .*, whose CA is for trust domain cluster.local/);
    // The environment overrides the YAML…
    const env = { MESHCA_TRUST_DOMAIN: 'cluster.local' };
    expect((await cli(args, env)).stderr).toMatch(/requested TTL 3h exceeds the maximum 2h/);
    // …and a flag overrides both.
    expect((await cli([...args, '--max-ttl', '4h'], env)).code).toBe(0);
    writeFileSync(yaml, 'max-ttl: forever\n');
    expect((await cli(args, env)).stderr).toMatch(/max-ttl in .*meshca.yaml: "forever" is not a duration/);
    writeFileSync(yaml, 'colour: blue\n');
    expect((await cli(args, env)).stderr).toMatch(/unknown setting "colour"/);
    writeFileSync(yaml, '');
    expect((await cli(args, { ...env, MESHCA_MAX_TTL: 'x' })).stderr).toMatch(/MESHCA_MAX_TTL: "x" is not a duration/);
  });

  it('every command has --help', async () => {
    for (const cmd of COMMANDS) {
      const r = await cli([...cmd.path, '--help']);
      expect(r.code, cmd.path.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/^Usage: meshca /);
    }
  });

  it('an unknown command or option exits 2 with one line', async () => {
    const a = await cli(['frobnicate']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/unknown command "frobnicate"/);
    const b = await cli(['version', '--bogus']);
    expect(b.code).toBe(2);
    expect(b.stderr).toBe('meshca version: unknown option --bogus; see --help\n');
  });

  it('meshca version prints the package version, and JSON with --json', async () => {
    expect((await cli(['version'])).stdout).toMatch(/^meshca 0\.\d+\.\d+ \(node v\d+/);
    expect(JSON.parse((await cli(['version', '--json'])).stdout)).toMatchObject({ version: expect.any(String) });
  });
});
