// `meshca agent` in-process against a real in-process CA: SDS over the real Unix socket, renewals
// with new keys, real TLS handshakes with the served secrets, and the CA going away and back.
// The CA and the agent share a FakeClock: renewals and retries happen when the test advances it.

import { X509Certificate } from 'node:crypto';
import { lstatSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PERMANENT_RETRY_MS } from '../../src/ca/index.ts';
import { describeError } from '../../src/errors/index.ts';
import type { TestCa } from '../helpers/serve.ts';
import { FakeClock } from '../fakes/clock.ts';
import { EnvoyLikeStream, sdsClient, type ReceivedResponse } from '../sds/envoy_client.ts';
import { agentWithCa, envoyStream, keyMatchesLeaf, mtlsHandshake, opensslVerifyServed, pemBlocks, runTestAgent, scratchDir, spiffeIdOf, startCa, writeToken, type AgentWithCaOptions, type TestAgent } from './harness.ts';

const WEB_ID = 'spiffe://cluster.local/ns/default/sa/web';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const setup = (opts: AgentWithCaOptions = {}) => agentWithCa(cleanups, opts);

/** Moves the fake clock to the agent's next scheduled attempt (renewal or retry). */
async function untilNextAttempt(agent: TestAgent, clock: FakeClock): Promise<void> {
  const at = agent.running.agent.status().nextAttemptAtMs;
  if (at === undefined) throw new Error('the agent has no attempt scheduled');
  await clock.advance(Math.max(0, at - clock.now()));
}

const envoy = (agent: TestAgent, names = ['default', 'ROOTCA'], extra: { nackResponse?: number } = {}) => envoyStream(cleanups, agent, names, extra);

describe('meshca agent', () => {
  it('serves default and ROOTCA over its Unix socket: key matches the leaf and openssl verifies the chain', async () => {
    const { dir, keysDir, agent } = await setup({ outputDir: 'out' });
    const r = await envoy(agent).responses.waitFor(1);
    const cert = r.secrets.get('default')!;
    const bundle = r.secrets.get('ROOTCA')!.bundlePem!;
    expect(keyMatchesLeaf(cert)).toBe(true);
    expect(spiffeIdOf(pemBlocks(cert.chainPem!)[0]!)).toBe(WEB_ID);
    expect(bundle).toBe(readFileSync(join(keysDir, 'root-cert.pem'), 'utf8'));
    expect(opensslVerifyServed(cert.chainPem!, bundle)).toContain('OK');
    // The socket exists only for owner and group.
    expect(lstatSync(agent.socket).isSocket()).toBe(true);
    expect(statSync(agent.socket).mode & 0o777).toBe(0o660);
    // File output for workloads without Envoy: same certificate, key 0600.
    expect(readFileSync(join(dir, 'out', 'tls.crt'), 'utf8')).toBe(cert.chainPem);
    expect(readFileSync(join(dir, 'out', 'tls.key'), 'utf8')).toBe(cert.privateKeyPem);
    expect(readFileSync(join(dir, 'out', 'ca.crt'), 'utf8')).toBe(bundle);
    expect(statSync(join(dir, 'out', 'tls.key')).mode & 0o777).toBe(0o600);
    // Each file written is logged, by path.
    const written = agent.logs().filter((l) => typeof l.file === 'string').map((l) => l.file);
    expect(written).toEqual(['tls.key', 'tls.crt', 'ca.crt'].map((f) => join(dir, 'out', f)));
    const health = `http://${agent.running.http!.address}`;
    expect((await fetch(`${health}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${health}/metrics`)).text();
    expect(metrics).toMatch(/meshca_sds_streams_open\{kind="sotw"\} 1/);
    expect(metrics).toMatch(/meshca_agent_cert_expiry_timestamp_seconds \d/);
    // The private key never reaches the log.
    expect(JSON.stringify(agent.logs())).not.toContain(cert.privateKeyPem!.split('\n')[1]!);
  });

  it('pushes renewed certificates with new keys before the old ones expire, and TLS works across each renewal', async () => {
    const { agent, clock } = await setup({ ttlMs: 10_000 });
    const first = envoy(agent);
    const second = envoy(agent, ['default', 'ROOTCA']);
    const seen: ReceivedResponse[] = [];
    /** Fake time at which each push arrived. */
    const seenAtMs: number[] = [];
    for (let n = 1; n <= 3; n++) {
      if (n > 1) await untilNextAttempt(agent, clock);
      const r = await first.responses.waitFor(n, 15_000);
      seen.push(r);
      seenAtMs.push(clock.now());
      const cert = r.secrets.get('default') ?? seen.findLast((s) => s.secrets.has('default'))!.secrets.get('default')!;
      const bundle = (r.secrets.get('ROOTCA') ?? seen[0]!.secrets.get('ROOTCA'))!.bundlePem!;
      expect(keyMatchesLeaf(cert)).toBe(true);
      expect(opensslVerifyServed(cert.chainPem!, bundle)).toContain('OK');
      expect(await mtlsHandshake(cert, bundle, WEB_ID)).toEqual({ serverSawId: WEB_ID, clientSawId: WEB_ID });
    }
    const certs = seen.map((r) => r.secrets.get('default')!);
    // A new key every time.
    expect(new Set(certs.map((c) => c.privateKeyPem)).size).toBe(3);
    // No gap: each renewal arrived while the previous certificate was still valid, at about half its life.
    for (let i = 1; i < seen.length; i++) {
      const previous = new X509Certificate(pemBlocks(certs[i - 1]!.chainPem!)[0]!);
      const next = new X509Certificate(pemBlocks(certs[i]!.chainPem!)[0]!);
      expect(seenAtMs[i]!).toBeLessThan(Date.parse(previous.validTo));
      expect(seenAtMs[i]! - seenAtMs[i - 1]!).toBeGreaterThanOrEqual(4_000);
      expect(Date.parse(next.validFrom)).toBeLessThanOrEqual(seenAtMs[i]!);
    }
    // The second proxy on the same socket saw the same pushes.
    const other = await second.responses.waitFor(3, 5_000);
    expect(other.version).toBe(seen[2]!.version);
    expect(second.responses.all.slice(0, 3).map((r) => r.version)).toEqual(seen.map((r) => r.version));
  });

  it('keeps serving when the CA is down, retries with growing backoff, and renews when it is back', async () => {
    const { dir, keysDir, ca, agent, clock } = await setup({ ttlMs: 60_000 });
    const stream = envoy(agent, ['default']);
    const before = await stream.responses.waitFor(1);
    const address = ca.server.grpcAddress;
    await ca.server.close(100);
    for (let i = 0; i < 3; i++) await agent.running.agent.renew();
    const failures = agent.logs().filter((l) => typeof l.retryInMs === 'number');
    expect(failures.length).toBeGreaterThanOrEqual(3);
    const delays = failures.map((l) => l.retryInMs as number);
    expect(delays[1]!).toBeGreaterThan(delays[0]!);
    expect(delays[2]!).toBeGreaterThan(delays[1]!);
    expect(String(failures[0]!.msg)).toMatch(/still serving the current certificate, valid for another \d+[hms]/);
    // Still serving: a proxy that connects now gets the current certificate; the agent is ready.
    const late = await envoy(agent, ['default']).responses.waitFor(1);
    expect(late.secrets.get('default')).toEqual(before.secrets.get('default'));
    expect((await fetch(`http://${agent.running.http!.address}/readyz`)).status).toBe(200);
    // The CA comes back on the same address: the next retry renews and pushes.
    const back = await startCa(keysDir, address, clock);
    cleanups.push(() => back.stop());
    await untilNextAttempt(agent, clock);
    const renewed = await stream.responses.waitFor(2, 15_000);
    expect(renewed.secrets.get('default')!.privateKeyPem).not.toBe(before.secrets.get('default')!.privateKeyPem);
    expect(keyMatchesLeaf(renewed.secrets.get('default')!)).toBe(true);
    // The outage that ended says so, once.
    const recovered = agent.logs().filter((l) => String(l.msg).startsWith('recovered'));
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ failedFor: expect.stringMatching(/^\d/), lastError: expect.stringMatching(/is unavailable/) });
    void dir;
  });

  it('reads the token file on every request: no token means no certificate yet, and SDS waits', async () => {
    const { dir, keysDir, agent, clock } = await setup({ withToken: false });
    const stream = envoy(agent, ['default']);
    // Two retries come and go (the token file is still missing); the proxy gets nothing meanwhile.
    await untilNextAttempt(agent, clock);
    await untilNextAttempt(agent, clock);
    expect(agent.running.agent.status().consecutiveFailures).toBe(3);
    expect((await fetch(`http://${agent.running.http!.address}/readyz`)).status).toBe(503);
    expect(stream.responses.all).toHaveLength(0);
    await writeToken(keysDir, join(dir, 'token'));
    await untilNextAttempt(agent, clock);
    const r = await stream.responses.waitFor(1, 10_000);
    expect(spiffeIdOf(pemBlocks(r.secrets.get('default')!.chainPem!)[0]!)).toBe(WEB_ID);
  });

  it('renews over mTLS with its current certificate when the token is gone', async () => {
    const { dir, agent } = await setup();
    const stream = envoy(agent, ['default']);
    const before = await stream.responses.waitFor(1);
    unlinkSync(join(dir, 'token'));
    expect(await agent.running.agent.renew()).toBe(true);
    const after = await stream.responses.waitFor(2);
    expect(after.secrets.get('default')!.chainPem).not.toBe(before.secrets.get('default')!.chainPem);
    expect(agent.logs().some((l) => String(l.msg).includes('renewing over mTLS'))).toBe(true);
  });

  it('renews over mTLS when the token file holds an expired token, telling the user once, while its certificate is valid', async () => {
    const { dir, keysDir, agent, clock } = await setup({ withToken: false });
    await writeToken(keysDir, join(dir, 'token'), 'default', 'web', { ttlMs: 20_000, nowMs: clock.now() });
    await untilNextAttempt(agent, clock);
    const stream = envoy(agent, ['default']);
    const before = await stream.responses.waitFor(1, 10_000);
    // The token is past its exp; the 1h certificate is not. (Less than the CA's 60 s backdate, so the
    // renewed certificates are valid in real time too, for the real TLS handshakes.)
    await clock.advance(30_000);
    const ok = await agent.running.agent.renew();
    expect(ok ? 'ok' : agent.running.agent.status().lastError).toBe('ok');
    const ok2 = await agent.running.agent.renew();
    expect(ok2 ? 'ok' : agent.running.agent.status().lastError).toBe('ok');
    const after = await stream.responses.waitFor(3, 10_000);
    expect(after.secrets.get('default')!.chainPem).not.toBe(before.secrets.get('default')!.chainPem);
    const told = agent.logs().filter((l) => String(l.msg).includes('the token in --token-file has expired'));
    expect(told).toHaveLength(1);
    expect(String(told[0]!.msg)).toMatch(/renewing over mTLS with the current certificate while it is valid\. Give the agent a fresh token .*--token-ttl/);
    expect(told[0]!.level).toBe('warn');
  });

  it('treats a TTL above the CA maximum as permanent: logged once with the fix, /readyz says why, retries every 10 minutes', async () => {
    const { dir, keysDir, agent, clock } = await setup({ ttlMs: 48 * 3_600_000, withToken: false });
    await writeToken(keysDir, join(dir, 'token'), 'default', 'web', { ttlMs: 24 * 3_600_000, nowMs: clock.now() });
    await untilNextAttempt(agent, clock);
    await vi.waitFor(() => expect(agent.running.agent.status().consecutiveFailures).toBe(2), { timeout: 10_000 });
    const status = agent.running.agent.status();
    expect(status.nextAttemptAtMs! - clock.now()).toBe(PERMANENT_RETRY_MS);
    expect(status.permanentError).toMatch(/requested TTL 48h exceeds the maximum 24h \(lower the agent's --ttl to at most the CA's maximum, or raise the CA's --max-ttl; retrying every 10m\)/);
    const ready = await fetch(`http://${agent.running.http!.address}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain("the CA refuses this request and retrying will not change that: the CA at");
    for (const n of [3, 4]) {
      await untilNextAttempt(agent, clock);
      await vi.waitFor(() => expect(agent.running.agent.status().consecutiveFailures).toBe(n), { timeout: 10_000 });
    }
    const errors = agent.logs().filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ fix: "lower the agent's --ttl to at most the CA's maximum, or raise the CA's --max-ttl", retryInMs: PERMANENT_RETRY_MS });
    expect(agent.logs().filter((l) => l.msg === 'the CA still refuses; retrying slowly')).toHaveLength(2);
  });

  it('removes a stale socket at start and refuses one another process is listening on', async () => {
    const scratch = scratchDir();
    cleanups.push(scratch.cleanup);
    const keysDir = join(scratch.path, 'keys');
    const ca = await startCa(keysDir);
    cleanups.push(() => ca.stop());
    await writeToken(keysDir, join(scratch.path, 'token'));
    const socket = join(scratch.path, 'deep', 'er', 'socket');
    // A live listener on the path: refused.
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(scratch.path, 'deep', 'er'), { recursive: true });
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(socket, () => r()));
    const base = { caAddress: ca.server.grpcAddress, dir: scratch.path, rootCertPath: join(keysDir, 'root-cert.pem'), ttlMs: 3_600_000, socket };
    await expect(runTestAgent(base)).rejects.toThrow(/in use by another process/);
    // The same path left behind by a dead process: removed and served.
    await new Promise<void>((r) => squatter.close(() => r()));
    writeFileSync(join(scratch.path, 'marker'), '');
    const { execFileSync } = await import('node:child_process');
    execFileSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => process.exit(0))`]);
    expect(lstatSync(socket).isSocket()).toBe(true);
    const agent = await runTestAgent(base);
    cleanups.push(() => agent.stop());
    const r = await envoy(agent, ['default']).responses.waitFor(1);
    expect(r.secrets.has('default')).toBe(true);
  });

  it('refuses to start without a readable root certificate, naming the setting', async () => {
    const scratch = scratchDir();
    cleanups.push(scratch.cleanup);
    const err = await runTestAgent({ caAddress: '127.0.0.1:1', dir: scratch.path, rootCertPath: join(scratch.path, 'missing.pem'), ttlMs: 3_600_000 }).catch((e: unknown) => e);
    expect(describeError(err)).toMatch(/--root-cert .*missing\.pem: cannot read the file \(ENOENT\)/);
  });
});
