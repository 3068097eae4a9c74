// Errors say what happened, through `meshca request` (the agent's CA client) against a real CA: a
// root or name that does not verify is not an outage, a request over 64 KiB reads as the
// documented limit, and the CA's `refused` log line carries the reason as well as the code.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opensslCsr } from '../helpers/csr.ts';
import { meshcaInProcess, startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';

const meshca = (args: string[]) => meshcaInProcess(args);

describe('what the CA client says when a request fails', () => {
  const dir = tempDir('meshca-errors-');
  let ca: TestCa;
  let other: TestCa;
  const file = (name: string) => join(dir.path, name);
  beforeAll(async () => {
    ca = await startTestCa();
    other = await startTestCa();
    writeFileSync(file('root.pem'), ca.rootPem);
    writeFileSync(file('other-root.pem'), other.rootPem);
    writeFileSync(file('req.csr'), opensslCsr().csrPem);
    writeFileSync(file('huge.csr'), `${opensslCsr().csrPem}${'x'.repeat(70 * 1024)}\n`);
    writeFileSync(file('token'), (await meshca(['token', 'mint', '--keys', ca.keysDir, '--ns', 'default', '--sa', 'web'])).stdout);
  });
  afterAll(async () => {
    await ca.stop();
    await other.stop();
    dir.cleanup();
  });
  const request = (...extra: string[]) => meshca(['request', '--ca-addr', ca.server.grpcAddress, '--token-file', file('token'), '--csr', file('req.csr'), '--root-cert', file('root.pem'), ...extra]);

  it('names a root that does not verify the CA as a trust failure, not an outage', async () => {
    const r = await request('--root-cert', file('other-root.pem'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `meshca request: the CA at ${ca.server.grpcAddress} could not be verified: unable to get local issuer certificate; ` +
        `check that --root-cert holds the CA's root and that --ca-name (default: the host of --ca-addr) is a name in its serving certificate\n`,
    );
  });

  it('names a server name the CA certificate does not carry', async () => {
    const r = await request('--ca-name', 'wrong.example');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/could not be verified: Hostname\/IP does not match certificate's altnames: Host: wrong\.example\. is not in the cert's altnames: .*; check that --root-cert/);
    expect(r.stderr).not.toContain('unavailable');
  });

  it('reads a request over 64 KiB as the documented limit', async () => {
    const r = await request('--csr', file('huge.csr'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^meshca request: the CA at \S+ refused the request: it is over the CA's 64 KiB limit \(Received message larger than max \(\d+ vs 65536\)\); send a smaller CSR\n$/);
  });

  it("logs each refusal with the reason the client was given", async () => {
    const r = await request('--ttl', '30h');
    expect(r.stderr).toMatch(/requested TTL 30h exceeds the maximum 24h/);
    const refused = ca.logs.filter((l) => l.msg === 'refused');
    expect(refused.at(-1)).toMatchObject({ outcome: 'INVALID_ARGUMENT', reason: 'requested TTL 30h exceeds the maximum 24h' });
  });
});
