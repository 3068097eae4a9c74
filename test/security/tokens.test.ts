// Tokens the CA must refuse although their signature is good (issue 12, Low): an `iat` in the
// future beyond the clock skew, and a service account that is not a DNS-1123 subdomain ("a..b").
// Signed with the real development issuer key, sent to the real server.

import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_TOKEN_ISSUER, DEV_TOKEN_KEY_FILE } from '../../src/authn/dev_issuer.ts';
import { readPrivateKeyFile } from '../../src/pki/index.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { startTestCa, type TestCa } from '../helpers/serve.ts';
import { cli } from './cli.ts';

let ca: TestCa;
let client: CaClient;

beforeAll(async () => {
  ca = await startTestCa();
  client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
});
afterAll(async () => {
  client.close();
  await ca.stop();
});

/** A dev-issuer token with exactly these claims (no nbf unless given). */
function devToken(opts: { ns?: string; sa?: string; iatSeconds: number; expSeconds: number }): Promise<string> {
  const ns = opts.ns ?? 'shop';
  const sa = opts.sa ?? 'web';
  return new SignJWT({ 'kubernetes.io': { namespace: ns, serviceaccount: { name: sa, uid: randomUUID() } } })
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
    .setIssuer(DEV_TOKEN_ISSUER)
    .setSubject(`system:serviceaccount:${ns}:${sa}`)
    .setAudience(['meshca'])
    .setIssuedAt(opts.iatSeconds)
    .setExpirationTime(opts.expSeconds)
    .sign(readPrivateKeyFile(join(ca.keysDir, DEV_TOKEN_KEY_FILE)));
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('token claims the CA refuses', () => {
  it('refuses a token whose iat is in the future beyond the clock skew, and accepts one within it', async () => {
    const future = await devToken({ iatSeconds: nowSeconds() + 600, expSeconds: nowSeconds() + 1200 });
    await expect(client.createCertificate({ csr: opensslCsr('ec-p256').csrPem, token: future })).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
      details: expect.stringMatching(/token iat is (59\d|60\d) s in the future \(beyond the 30 s clock skew allowed\)/),
    });
    const skewed = await devToken({ iatSeconds: nowSeconds() + 10, expSeconds: nowSeconds() + 600 });
    expect((await client.createCertificate({ csr: opensslCsr('ec-p256').csrPem, token: skewed })).certChain.length).toBeGreaterThan(1);
  });

  it('refuses a service account that is not a DNS-1123 subdomain ("a..b"), at the CA and in token mint', async () => {
    for (const sa of ['a..b', 'a.-b', '-a']) {
      const token = await devToken({ sa, iatSeconds: nowSeconds(), expSeconds: nowSeconds() + 600 });
      await expect(client.createCertificate({ csr: opensslCsr('ec-p256').csrPem, token })).rejects.toMatchObject({
        code: grpc.status.UNAUTHENTICATED,
        details: expect.stringContaining(`service account "${sa}" is not a valid Kubernetes name (DNS-1123 subdomain)`),
      });
    }
    const r = await cli(['token', 'mint', '--keys', ca.keysDir, '--ns', 'shop', '--sa', 'a..b']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/service account "a\.\.b" is not a valid Kubernetes name/);
    // A dotted name made of valid labels is a valid subdomain.
    expect((await cli(['token', 'mint', '--keys', ca.keysDir, '--ns', 'shop', '--sa', 'a.b-c'])).code).toBe(0);
  });
});
