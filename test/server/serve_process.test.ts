// The README's path, through real processes: `meshca serve` on an empty key directory makes a
// development CA and serves; `meshca token mint` + `openssl req` + `meshca request` get a chain
// that OpenSSL verifies; SIGTERM stops the server with exit code 0.

import { readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { opensslCsr, opensslVerify } from '../helpers/csr.ts';
import { closeNet, listenOn, runMeshca, startServeProcess, startServeUntilFirstLine, tempDir } from '../helpers/serve.ts';

const portOf = (server: Server) => (server.address() as { port: number }).port;

describe('meshca serve as a process', () => {
  it('makes a development CA, issues to a minted token via meshca request, and exits 0 on SIGTERM', async () => {
    const dir = tempDir();
    const keys = join(dir.path, 'keys');
    const serve = await startServeProcess(['--keys', keys, '--db', `sqlite:${join(dir.path, 'meshca.db')}`]);
    try {
      expect(serve.output()).toMatch(/made a DEVELOPMENT CA in .*keys\/ because it was empty/);
      const health = await fetch(`http://${serve.httpAddress}/readyz`);
      expect(health.status).toBe(200);

      const mint = await runMeshca(['token', 'mint', '--keys', keys, '--ns', 'default', '--sa', 'web', '--pod', 'web-0']);
      expect(mint.code).toBe(0);
      writeFileSync(join(dir.path, 'token'), mint.stdout);
      writeFileSync(join(dir.path, 'req.csr'), opensslCsr().csrPem);
      const req = await runMeshca([
        'request', '--ca-addr', serve.grpcAddress, '--root-cert', join(keys, 'root-cert.pem'),
        '--token-file', join(dir.path, 'token'), '--csr', join(dir.path, 'req.csr'), '--ttl', '30m',
      ]);
      expect(req.stderr).toBe('');
      expect(req.code).toBe(0);
      const certs = req.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g)!;
      expect(certs).toHaveLength(3);
      expect(opensslVerify(readFileSync(join(keys, 'root-cert.pem'), 'utf8'), certs[1]!, certs[0]!)).toContain('OK');
      expect(new X509Certificate(certs[0]!).subjectAltName).toBe('URI:spiffe://cluster.local/ns/default/sa/web');
      expect(serve.output()).not.toContain(mint.stdout.trim());

      // A refused request says why, in one line.
      const bad = await runMeshca(['request', '--ca-addr', serve.grpcAddress, '--root-cert', join(keys, 'root-cert.pem'), '--token-file', join(dir.path, 'token'), '--csr', join(dir.path, 'req.csr'), '--ttl', '30h']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/requested TTL 30h exceeds the maximum 24h/);
    } finally {
      serve.child.kill('SIGTERM');
      expect(await serve.exited).toBe(0);
      expect(serve.output()).toMatch(/"msg":"stopped"/);
      dir.cleanup();
    }
  });

  // bin/meshca.js: serve replaces itself (execve, same pid) with V8's semi-spaces capped at 8 MB.
  it.runIf(process.platform === 'linux')('runs with a bounded young generation, unless NODE_OPTIONS sets one', async () => {
    const dir = tempDir();
    const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    try {
      const serve = await startServeProcess(['--keys', join(dir.path, 'keys'), '--db', 'memory:']);
      try {
        expect(cmdline(serve.child.pid!)).toContain('--max-semi-space-size=8');
        expect(cmdline(serve.child.pid!)).toContain('serve');
      } finally {
        serve.child.kill('SIGTERM');
        expect(await serve.exited).toBe(0);
      }
      // V8 takes its flags with dashes or underscores: either spelling is the operator's own setting
      // (bin/meshca.js compares them with _ read as -; the underscore spelling is the one it once missed).
      const own = await startServeProcess(['--keys', join(dir.path, 'keys'), '--db', 'memory:'], { NODE_OPTIONS: '--max_semi_space_size=16' });
      try {
        expect(cmdline(own.child.pid!).some((arg) => arg.startsWith('--max-semi-space-size'))).toBe(false);
      } finally {
        own.child.kill('SIGTERM');
        expect(await own.exited).toBe(0);
      }
    } finally {
      dir.cleanup();
    }
  });

  it('exits non-zero with one line on a bad setting', async () => {
    const r = await runMeshca(['serve', '--listen', 'nowhere', '--keys', '/nonexistent']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('meshca serve: --listen "nowhere" is not host:port (e.g. 0.0.0.0:15012, [::]:15012, 127.0.0.1:0)\n');
  });

  it('never half-starts: with the HTTP port busy it exits non-zero, serves nothing and leaves no gRPC port open', async () => {
    const dir = tempDir();
    const taken = await listenOn(0);
    const probe = await listenOn(0);
    const grpcPort = portOf(probe);
    await closeNet(probe);
    try {
      const r = await runMeshca(['serve', '--keys', join(dir.path, 'keys'), '--db', `sqlite:${join(dir.path, 'meshca.db')}`, '--listen', `127.0.0.1:${grpcPort}`, '--http-listen', `127.0.0.1:${portOf(taken)}`]);
      expect(r.code).not.toBe(0);
      // The log is JSON on stderr; the reason is its last line.
      expect(r.stderr).toMatch(/\nmeshca serve: --http-listen 127\.0\.0\.1:\d+: cannot listen \(EADDRINUSE\)\n$/);
      expect(r.stdout + r.stderr).not.toContain('meshca serve listening');
      // The gRPC port it had bound is free again: nothing is left serving.
      await closeNet(await listenOn(grpcPort));
    } finally {
      await closeNet(taken);
      dir.cleanup();
    }
  });

  it('honours the first SIGTERM even while it is still starting', async () => {
    const dir = tempDir();
    // The first line (the development CA) comes before the ports are bound: stop it right there.
    const serve = await startServeUntilFirstLine(['--keys', join(dir.path, 'keys'), '--db', `sqlite:${join(dir.path, 'meshca.db')}`]);
    try {
      serve.child.kill('SIGTERM');
      expect(await serve.exited).toBe(0);
      expect(serve.output()).toMatch(/"msg":"(stopped before serving|stopped)"/);
    } finally {
      serve.child.kill('SIGKILL');
      dir.cleanup();
    }
  });
});
