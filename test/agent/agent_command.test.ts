// End to end through the real command line: `meshca serve`, `meshca token mint` and `meshca agent`
// as separate processes, an Envoy-like SDS client on the agent's socket, and a clean SIGTERM.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AGENT_NODE_OPTIONS } from '../../src/inject/index.ts';
import { MESHCA_BIN, REPO_ROOT, runMeshca, startServeProcess } from '../helpers/serve.ts';
import { EnvoyLikeStream, sdsClient } from '../sds/envoy_client.ts';
import { keyMatchesLeaf, opensslVerifyServed, pemBlocks, scratchDir, spiffeIdOf } from './harness.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Starts `meshca <args>` in its own process. */
type Launch = (args: string[]) => ChildProcessWithoutNullStreams;

/** As a user runs it: bin/meshca.js (dist/ when current, src/ otherwise). */
const throughBin: Launch = (args) => spawn(process.execPath, [MESHCA_BIN, ...args]);

const BUILD_DIR = `.tmp-build-agent-${process.pid}`;
afterAll(() => rmSync(join(REPO_ROOT, BUILD_DIR), { recursive: true, force: true }));

/**
 * As in a pod: the JavaScript build (fresh, so an edited src/ is what runs) under the NODE_OPTIONS
 * the injector sets. --jitless leaves no WebAssembly, so the type stripper cannot run there.
 */
const asInjected: Launch = (args) => {
  if (!existsSync(join(REPO_ROOT, BUILD_DIR, '.built'))) {
    const build = spawnSync(process.execPath, ['scripts/build.js', BUILD_DIR], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`build failed: ${build.stderr}`);
  }
  const main = pathToFileURL(join(REPO_ROOT, BUILD_DIR, 'cli/main.js')).href;
  const script = `const { main } = await import(${JSON.stringify(main)}); const stop = new AbortController(); process.once('SIGTERM', () => stop.abort()); process.exitCode = await main(process.argv.slice(1), { signal: stop.signal });`;
  return spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${AGENT_NODE_OPTIONS}` } });
};

describe('meshca agent (command line)', () => {
  it.each([
    ['through bin/meshca.js', throughBin],
    ['from the JavaScript build under the injected NODE_OPTIONS (no JIT, small young generation)', asInjected],
  ])('gets a certificate from meshca serve with a minted token and serves it over SDS until SIGTERM (%s)', async (_how, launch) => {
    const scratch = scratchDir();
    cleanups.push(scratch.cleanup);
    const keys = join(scratch.path, 'keys');
    const ca = await startServeProcess(['--keys', keys, '--db', 'memory:']);
    cleanups.push(() => void ca.child.kill('SIGTERM'));
    const minted = await runMeshca(['token', 'mint', '--keys', keys, '--ns', 'shop', '--sa', 'cart']);
    expect(minted.code).toBe(0);
    writeFileSync(join(scratch.path, 'token'), minted.stdout.trim());

    const socket = join(scratch.path, 'run', 'sds.sock');
    const agent = launch(['agent', '--ca-addr', ca.grpcAddress, '--root-cert', join(keys, 'root-cert.pem'), '--token-file', join(scratch.path, 'token'), '--sds-socket', socket, '--http-listen', '127.0.0.1:0', '--ttl', '1h']);
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

    // V8's young generation is bounded: bin/meshca.js replaces itself with the flag, or the
    // injector's NODE_OPTIONS sets it.
    const flags = [...readFileSync(`/proc/${agent.pid}/cmdline`, 'utf8').split('\0'), ...(launch === asInjected ? AGENT_NODE_OPTIONS.split(' ') : [])];
    expect(flags).toContain('--max-semi-space-size=1');

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
