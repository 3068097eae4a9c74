// One command line (issue 17, items 8–10 and 12): one name per meaning across commands, one
// --config file for every command, help for every command group and --version, and `request`
// renewing over mutual TLS against a real serve.

import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { COMMANDS, type CommandEntry } from '../../src/cli/commands/index.ts';
import { opensslCsr, pemBlocks } from '../helpers/csr.ts';
import { runMeshca, startServeProcess, startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';

let work: { path: string; cleanup: () => void };
let keys: string;

async function cli(args: string[], env: Record<string, string> = {}, signal?: AbortSignal) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { env, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), ...(signal ? { signal } : {}) });
  return { code, stdout, stderr };
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

beforeAll(async () => {
  work = tempDir();
  keys = join(work.path, 'keys');
  expect((await cli(['ca', 'init', '--keys', keys])).code).toBe(0);
});
afterAll(() => work.cleanup());

describe('one name, one meaning (item 8)', () => {
  it('token mint takes --audience and --token-ttl; --aud and --ttl are gone', async () => {
    const r = await cli(['token', 'mint', '--keys', keys, '--ns', 'default', '--sa', 'web', '--audience', 'istio-ca', '--token-ttl', '2h']);
    expect(r.code).toBe(0);
    const claims = claimsOf(r.stdout.trim());
    expect(claims.aud).toEqual(expect.arrayContaining(['istio-ca']));
    expect((claims.exp as number) - (claims.iat as number)).toBe(7200);
    expect((await cli(['token', 'mint', '--keys', keys, '--ns', 'default', '--sa', 'web', '--aud', 'x'])).stderr).toBe('meshca token mint: unknown option --aud; see --help\n');
    expect((await cli(['token', 'mint', '--keys', keys, '--ns', 'default', '--sa', 'web', '--ttl', '2h'])).stderr).toBe('meshca token mint: unknown option --ttl; see --help\n');
  });

  it("MESHCA_TTL is a certificate's lifetime only; the token's is MESHCA_TOKEN_TTL", async () => {
    const mint = (env: Record<string, string>) => cli(['token', 'mint', '--keys', keys, '--ns', 'default', '--sa', 'web'], env);
    const plain = claimsOf((await mint({ MESHCA_TTL: '5h' })).stdout.trim());
    expect((plain.exp as number) - (plain.iat as number)).toBe(600);
    const longer = claimsOf((await mint({ MESHCA_TOKEN_TTL: '8h' })).stdout.trim());
    expect((longer.exp as number) - (longer.iat as number)).toBe(8 * 3600);
  });

  it('request and agent share one default CA address and both require --root-cert', async () => {
    const csr = join(work.path, 'any.csr');
    writeFileSync(csr, opensslCsr().csrPem);
    const request = await cli(['request', '--csr', csr, '--token-file', '/dev/null']);
    expect(request).toMatchObject({ code: 2, stderr: 'meshca request: --root-cert is required (or set MESHCA_ROOT_CERT)\n' });
    const agent = await cli(['agent']);
    expect(agent).toMatchObject({ code: 2, stderr: 'meshca agent: --root-cert is required (or set MESHCA_ROOT_CERT)\n' });
    const defaultOf = async (path: string[]) => /--ca-addr <string>.*\(default ([^)]+)\)/.exec((await cli([...path, '--help'])).stdout)?.[1];
    expect(await defaultOf(['request'])).toBe('meshca.meshca-system.svc:15012');
    expect(await defaultOf(['agent'])).toBe('meshca.meshca-system.svc:15012');
  });

  it('ca init plugs in an own root with --external-root-cert/--external-root-key, not the --root-cert clients trust', async () => {
    const r = await cli(['ca', 'init', '--keys', join(work.path, 'under'), '--root-cert', join(keys, 'root-cert.pem')]);
    expect(r).toMatchObject({ code: 2, stderr: 'meshca ca init: unknown option --root-cert; see --help\n' });
    const half = await cli(['ca', 'init', '--keys', join(work.path, 'under'), '--external-root-cert', join(keys, 'root-cert.pem')]);
    expect(half.stderr).toBe('meshca ca init: --external-root-cert and --external-root-key go together\n');
  });

  it('what one invocation asks (a workload, a filter, --force) comes from the command line only', async () => {
    // MESHCA_NS does not name the token's namespace (nor silently filter every audit query).
    expect((await cli(['token', 'mint', '--keys', keys, '--sa', 'web'], { MESHCA_NS: 'default' })).stderr).toBe('meshca token mint: --ns is required\n');
    const yaml = join(work.path, 'force.yaml');
    writeFileSync(yaml, 'force: true\n');
    const r = await cli(['ca', 'init', '--keys', keys, '--config', yaml]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"force" is given on the command line only \(--force\), not in a settings file/);
    expect((await cli(['token', 'mint', '--help'])).stdout).not.toMatch(/MESHCA_NS|MESHCA_SA/);
  });
});

describe('groups, help and --version (item 10)', () => {
  it('meshca --version prints the version, as a real process', async () => {
    const r = await runMeshca(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^meshca \d+\.\d+\.\d+ \(node v\d+/);
  });

  it.each(['root', 'audit', 'ca', 'token'])('meshca %s --help lists the group and its summaries', async (group) => {
    const r = await cli([group, '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const cmd of COMMANDS.filter((c) => c.path[0] === group)) expect(r.stdout).toMatch(new RegExp(`  ${cmd.path.join(' ')} +${cmd.summary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect(r.stdout).toMatch(new RegExp(`^Usage: meshca ${group} <command>`));
    const bare = await cli([group]);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toBe(r.stdout);
  });

  it('group help and the overview load no command module', async () => {
    const loaded: string[] = [];
    const fakes: CommandEntry[] = COMMANDS.map((c) => ({ ...c, load: async () => (loaded.push(c.path.join(' ')), c.load()) }));
    let out = '';
    for (const args of [['root', '--help'], ['audit'], ['--help'], ['help', 'audit']]) {
      await main(args, { env: {}, stdout: (t) => (out += t), stderr: (t) => (out += t) }, fakes);
    }
    expect(out).toContain('root activate');
    expect(loaded).toEqual([]);
  });

  it('help names a command: "meshca help root status" is its --help; a wrong word in a group says what the group has', async () => {
    expect((await cli(['help', 'root', 'status'])).stdout).toMatch(/^Usage: meshca root status/);
    const r = await cli(['root', 'statsu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('meshca: unknown command "root statsu"; "meshca root" has status, prepare, activate, retire, rotate-intermediate\n');
    expect((await cli(['help', 'frob'])).stderr).toBe('meshca: unknown command "frob"; run "meshca --help"\n');
    expect((await cli(['--bogus'])).stderr).toBe('meshca: unknown option --bogus; run "meshca --help"\n');
  });
});

describe('one --config file for every command (item 9)', () => {
  it('serve, root status, agent, token mint and audit query all run from the same YAML file', async () => {
    const dir = join(work.path, 'shared');
    const yaml = join(work.path, 'meshca.yaml');
    const sharedKeys = join(dir, 'keys');
    writeFileSync(
      yaml,
      [
        `keys: ${sharedKeys}`,
        `db: sqlite:${join(dir, 'ledger.db')}`,
        'listen: 127.0.0.1:0',
        'http-listen: 127.0.0.1:0',
        'trust-domain: cluster.local',
        'log-level: info',
        'max-ttl: 12h',
        'auditors: [spiffe://cluster.local/ns/security/sa/auditor]',
        `root-cert: ${join(sharedKeys, 'root-cert.pem')}`,
        `token-file: ${join(dir, 'token')}`,
        `sds-socket: ${join(dir, 'sds.sock')}`,
        `output-dir: ${join(dir, 'out')}`,
        'ttl: 2h',
        '',
      ].join('\n'),
    );
    const serve = await startServeProcess(['--config', yaml]);
    try {
      const status = await cli(['root', 'status', '--config', yaml]);
      expect(status.stderr).toBe('');
      expect(status.code).toBe(0);
      const mint = await cli(['token', 'mint', '--config', yaml, '--ns', 'default', '--sa', 'web']);
      expect(mint.code).toBe(0);
      writeFileSync(join(dir, 'token'), mint.stdout.trim());

      const stop = new AbortController();
      const agent = cli(['agent', '--config', yaml, '--ca-addr', serve.grpcAddress], {}, stop.signal);
      const deadline = Date.now() + 15_000;
      while (!existsSync(join(dir, 'out', 'tls.crt')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      stop.abort();
      const ran = await agent;
      expect(ran.stderr).toMatch(/serving SDS on /);
      expect(ran.code).toBe(0);
      const leaf = new X509Certificate(readFileSync(join(dir, 'out', 'tls.crt')));
      // ttl: 2h from the file, plus the CA's 60 s backdate.
      expect(Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)).toBe(2 * 3600_000 + 60_000);

      const query = await cli(['audit', 'query', '--config', yaml, '--id', 'spiffe://cluster.local/ns/default/sa/web', '--json']);
      expect(query.code).toBe(0);
      expect(JSON.parse(query.stdout).length).toBeGreaterThan(0);

      writeFileSync(yaml, `${readFileSync(yaml, 'utf8')}colour: blue\n`);
      const typo = await cli(['root', 'status', '--config', yaml]);
      expect(typo.code).toBe(2);
      expect(typo.stderr).toMatch(/unknown setting "colour" \(no meshca command has it/);
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
  });
});

describe('meshca request renews over mutual TLS (item 12)', () => {
  let ca: TestCa;
  beforeAll(async () => {
    ca = await startTestCa();
  });
  afterAll(async () => ca?.stop());

  it('gets a certificate with a token, then renews with --cert/--key and no token', async () => {
    const root = join(ca.keysDir, 'root-cert.pem');
    const mint = await cli(['token', 'mint', '--keys', ca.keysDir, '--ns', 'shop', '--sa', 'cart']);
    writeFileSync(join(work.path, 'cart.token'), mint.stdout.trim());
    const first = opensslCsr();
    writeFileSync(join(work.path, 'first.csr'), first.csrPem);
    const got = await cli(['request', '--ca-addr', ca.server.grpcAddress, '--root-cert', root, '--token-file', join(work.path, 'cart.token'), '--csr', join(work.path, 'first.csr')]);
    expect(got.stderr).toBe('');
    expect(got.code).toBe(0);
    writeFileSync(join(work.path, 'cart-chain.pem'), got.stdout);
    writeFileSync(join(work.path, 'cart-key.pem'), first.keyPem);

    const second = opensslCsr();
    writeFileSync(join(work.path, 'second.csr'), second.csrPem);
    const renewed = await cli([
      'request', '--ca-addr', ca.server.grpcAddress, '--root-cert', root, '--token-file', '/nonexistent',
      '--cert', join(work.path, 'cart-chain.pem'), '--key', join(work.path, 'cart-key.pem'), '--csr', join(work.path, 'second.csr'),
    ]);
    expect(renewed.stderr).toBe('');
    expect(renewed.code).toBe(0);
    const leaf = new X509Certificate(pemBlocks(renewed.stdout)[0]!);
    expect(leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/cart');
    expect(leaf.serialNumber).not.toBe(new X509Certificate(pemBlocks(got.stdout)[0]!).serialNumber);
    const grants = ca.logs.filter((l) => l.spiffeId === 'spiffe://cluster.local/ns/shop/sa/cart' && l.serial !== undefined);
    expect(grants.map((l) => l.authenticator)).toContain('mtls');
  });

  it('refuses --cert without --key, and a certificate this CA did not issue', async () => {
    const half = await cli(['request', '--root-cert', join(ca.keysDir, 'root-cert.pem'), '--csr', join(work.path, 'second.csr'), '--cert', join(work.path, 'cart-chain.pem')]);
    expect(half).toMatchObject({ code: 2, stderr: 'meshca request: --cert and --key go together\n' });
    const other = tempDir();
    try {
      await cli(['ca', 'init', '--keys', other.path]);
      const stranger = await cli([
        'request', '--ca-addr', ca.server.grpcAddress, '--root-cert', join(ca.keysDir, 'root-cert.pem'),
        '--cert', join(other.path, 'ca-cert.pem'), '--key', join(other.path, 'ca-key.pem'), '--csr', join(work.path, 'second.csr'),
      ]);
      expect(stranger.code).toBe(1);
      expect(stranger.stdout).toBe('');
    } finally {
      other.cleanup();
    }
  });
});
