// End to end through the real command line: `meshca serve`, `meshca token mint` and `meshca agent`
// as separate processes, an Envoy-like SDS client on the agent's socket, and a clean SIGTERM.

import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MESHCA_BIN, runMeshca, startServeProcess } from '../helpers/serve.ts';
import { EnvoyLikeStream, sdsClient } from '../sds/envoy_client.ts';
import { keyMatchesLeaf, opensslVerifyServed, pemBlocks, scratchDir, spiffeIdOf } from './harness.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('meshca agent (command line)', () => {
  it('gets a certificate from meshca serve with a minted token and serves it over SDS until SIGTERM', async () => {
    const scratch = scratchDir();
    cleanups.push(scratch.cleanup);
    const keys = join(scratch.path, 'keys');
    const ca = await startServeProcess(['--keys', keys, '--db', 'memory:']);
    cleanups.push(() => void ca.child.kill('SIGTERM'));
    const minted = await runMeshca(['token', 'mint', '--keys', keys, '--ns', 'shop', '--sa', 'cart']);
    expect(minted.code).toBe(0);
    writeFileSync(join(scratch.path, 'token'), minted.stdout.trim());

    const socket = join(scratch.path, 'run', 'sds.sock');
    const agent = spawn(
      process.execPath,
      [MESHCA_BIN, 'agent', '--ca-addr', ca.grpcAddress, '--root-cert', join(keys, 'root-cert.pem'), '--token-file', join(scratch.path, 'token'), '--sds-socket', socket, '--http-listen', '127.0.0.1:0', '--ttl', '1h'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    agent.stdout.on('data', (d) => (out += d));
    agent.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => agent.once('exit', (code) => resolve(code)));
    cleanups.push(() => void agent.kill('SIGKILL'));
    const health = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`agent did not start:\n${out}`)), 15_000);
      const check = () => {
        const m = /health on http:\/\/(\S+)/.exec(out);
        if (m) (clearTimeout(timer), resolve(m[1]!));
      };
      agent.stderr.on('data', check);
      void exited.then(() => reject(new Error(`agent exited early:\n${out}`)));
    });

    const client = sdsClient(`unix:${socket}`);
    const stream = new EnvoyLikeStream(client, { names: ['default', 'ROOTCA'] });
    const r = await stream.responses.waitFor(1, 15_000);
    const cert = r.secrets.get('default')!;
    expect(spiffeIdOf(pemBlocks(cert.chainPem!)[0]!)).toBe('spiffe://cluster.local/ns/shop/sa/cart');
    expect(keyMatchesLeaf(cert)).toBe(true);
    expect(opensslVerifyServed(cert.chainPem!, r.secrets.get('ROOTCA')!.bundlePem!)).toContain('OK');
    expect((await fetch(`http://${health}/readyz`)).status).toBe(200);
    expect(out).not.toContain(minted.stdout.trim());

    stream.close();
    client.close();
    agent.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(socket)).toBe(false);
  }, 40_000);

  it('exits with a one-line reason when --root-cert is missing', async () => {
    const r = await runMeshca(['agent', '--ca-addr', '127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('meshca agent: --root-cert is required (or set MESHCA_ROOT_CERT)');
  });
});
