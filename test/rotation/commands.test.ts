// `meshca root …` through the real command line: clear one-line refusals, idempotent steps, two
// processes racing `prepare` making exactly one root, ledger records, and an external root.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLedger } from '../../src/ledger/index.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { meshcaInProcess, runMeshca, startTestCa, tempDir } from '../helpers/serve.ts';
import { writeFileSync } from 'node:fs';

const meshca = (args: string[]) => meshcaInProcess(args);

describe('meshca root', () => {
  const dir = tempDir('meshca-root-');
  afterAll(() => dir.cleanup());
  const keys = join(dir.path, 'keys');
  const db = `sqlite:${join(dir.path, 'ledger.db')}`;
  const root = (...args: string[]) => meshca(['root', ...args, '--keys', keys, '--db', db]);
  const rootProcess = (...args: string[]) => runMeshca(['root', ...args, '--keys', keys, '--db', db]);

  it('walks prepare → activate → retire, refusing each step that is not yet safe with one line saying when it will be', async () => {
    expect((await meshca(['ca', 'init', '--keys', keys])).code).toBe(0);
    const oldRoot = readFileSync(join(keys, 'root-cert.pem'), 'utf8');

    const early = await root('activate');
    expect(early.code).toBe(1);
    expect(early.stderr).toBe('meshca root activate: refused: no root is prepared; run "meshca root prepare" first\n');

    // Two processes racing: exactly one root is made, the other finds it prepared.
    const [a, b] = await Promise.all([rootProcess('prepare', '--json'), rootProcess('prepare', '--json')]);
    expect([a, b].map((r) => `${r.code} ${r.stderr}`)).toEqual(['0 ', '0 ']);
    const outcomes = [JSON.parse(a.stdout).outcome, JSON.parse(b.stdout).outcome].sort();
    expect(outcomes).toEqual(['already-prepared', 'prepared']);
    expect(JSON.parse(a.stdout).rootKeyId).toBe(JSON.parse(b.stdout).rootKeyId);
    expect(readdirSync(join(keys, 'rotation', 'roots'))).toHaveLength(2);
    // The Istio files now carry both roots; the active chain is unchanged.
    const bundle = readFileSync(join(keys, 'root-cert.pem'), 'utf8');
    expect(bundle.startsWith(oldRoot)).toBe(true);
    expect(bundle.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(statSync(join(keys, 'ca-key.pem')).mode & 0o777).toBe(0o600);

    const tooSoon = await root('activate');
    expect(tooSoon.code).toBe(1);
    expect(tooSoon.stderr.split('\n')).toHaveLength(2);
    expect(tooSoon.stderr).toMatch(/refused: the new bundle has been out only \d+s, and workloads may hold certificates issued with the old bundle until \S+ \(no CA has recorded its maximum TTL in this ledger, so the default maximum 24h is assumed, .*Safe from \S+: try again in 2\dh.*, or pass --force/);

    const status = JSON.parse((await root('status', '--json')).stdout);
    expect(status.nextStep).toMatchObject({ step: 'activate', allowedNow: false });
    expect(status.bundle.rootKeyIds).toHaveLength(2);
    expect(status.acknowledgements).toEqual({ received: 0, pending: 0, truncated: false });

    const forced = await root('activate', '--force');
    expect(forced.code).toBe(0);
    expect(forced.stderr).toMatch(/^warning: activated .* early \(--force\): workloads that have not renewed since .* do not trust the new root yet/);
    expect((await root('activate')).stdout).toMatch(/is already active \(nothing changed\)/);
    execFileSync('openssl', ['verify', '-CAfile', join(keys, 'root-cert.pem'), '-untrusted', join(keys, 'cert-chain.pem'), join(keys, 'ca-cert.pem')]);

    const retireEarly = await root('retire');
    expect(retireEarly.code).toBe(1);
    expect(retireEarly.stderr).toMatch(/^meshca root retire: refused: certificates from the old chain \(root [0-9a-f]{16}…\) can be valid until .*pass --force if the old root is compromised\n$/);

    expect((await root('retire', '--force')).code).toBe(0);
    expect((await root('retire')).stdout).toMatch(/nothing to retire/);
    const after = readFileSync(join(keys, 'root-cert.pem'), 'utf8');
    expect(after.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    expect(after).not.toContain(oldRoot.trim());

    const ledger = await openLedger(db, { mustExist: true });
    const [bind, ...events] = (await ledger.query({ type: 'ca', limit: 100, order: 'asc' })).map((r) => r.event as { event: string; actor: string; detail: Record<string, unknown> });
    await ledger.close();
    // The first record binds the ledger to this CA (issue 17.3).
    expect(bind!.event).toBe('ledger-bind');
    expect(events.map((e) => e.event)).toEqual(['root-prepare', 'root-activate', 'root-retire']);
    expect(events[1]!.detail.forced).toBe(true);
    expect(events[0]!.actor).toMatch(/^cli:/);
  }, 60_000);

  it('plugs in an external root without keeping its key', async () => {
    const keys2 = join(dir.path, 'keys2');
    expect((await meshca(['ca', 'init', '--keys', keys2])).code).toBe(0);
    const ext = join(dir.path, 'ext');
    expect((await meshca(['ca', 'init', '--keys', ext])).code).toBe(0);
    const r = await meshca(['root', 'prepare', '--keys', keys2, '--db', 'memory:', '--external-root-cert', join(ext, 'root-cert.pem'), '--external-root-key', join(ext, 'root-key.pem'), '--json']);
    expect(r.code).toBe(0);
    const id = JSON.parse(r.stdout).rootKeyId as string;
    expect(readdirSync(join(keys2, 'rotation', 'roots', id))).toEqual(['root-cert.pem']);
    const status = JSON.parse((await meshca(['root', 'status', '--keys', keys2, '--db', 'memory:', '--json'])).stdout);
    expect(status.roots.find((x: { keyId: string }) => x.keyId === id)).toMatchObject({ state: 'prepared', keyHeld: false });
  }, 30_000);

  it('ca init --force on a rotated key store replaces all of it: sign, root status and serve all use the new CA', async () => {
    const keys3 = join(dir.path, 'keys3');
    const db3 = `sqlite:${join(dir.path, 'ledger3.db')}`;
    expect((await meshca(['ca', 'init', '--keys', keys3])).code).toBe(0);
    expect((await meshca(['root', 'prepare', '--keys', keys3, '--db', db3])).code).toBe(0);
    expect((await meshca(['root', 'activate', '--keys', keys3, '--db', db3, '--force'])).code).toBe(0);
    expect(readdirSync(join(keys3, 'rotation', 'roots'))).toHaveLength(2);

    const init = await meshca(['ca', 'init', '--keys', keys3, '--force', '--json']);
    expect(init.code).toBe(0);
    const newRoot = JSON.parse(init.stdout).rootKeyId as string;
    const newCa = JSON.parse(init.stdout).caKeyId as string;
    expect(readFileSync(join(keys3, 'root-cert.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    expect(existsSync(join(keys3, 'rotation', 'state.json'))).toBe(false);

    writeFileSync(join(dir.path, 'force.csr'), opensslCsr().csrPem);
    const signed = await meshca(['sign', '--keys', keys3, '--db', 'memory:', '--csr', join(dir.path, 'force.csr'), '--id', 'spiffe://cluster.local/ns/a/sa/b', '--json']);
    expect(signed.code).toBe(0);
    expect(JSON.parse(signed.stdout)).toMatchObject({ rootKeyId: newRoot, issuerKeyId: newCa });

    const status = JSON.parse((await meshca(['root', 'status', '--keys', keys3, '--db', 'memory:', '--json'])).stdout);
    expect(status.roots).toEqual([expect.objectContaining({ keyId: newRoot, state: 'active' })]);
    expect(status.intermediates).toEqual([expect.objectContaining({ keyId: newCa, state: 'active' })]);
    expect(status.bundle.rootKeyIds).toEqual([newRoot]);

    const ca = await startTestCa([], { keysDir: keys3 });
    try {
      expect(ca.server.context.state.authority.rootKeyId).toBe(newRoot);
      expect(ca.server.context.state.authority.keyId).toBe(newCa);
      expect(ca.rootPem).toBe(readFileSync(join(keys3, 'root-cert.pem'), 'utf8'));
    } finally {
      await ca.server.close(2000);
    }
  }, 60_000);
});
