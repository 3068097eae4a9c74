// Hand-made CSRs the real server must refuse with a clear INVALID_ARGUMENT and issue nothing
// (issue 12, Low): explicit EC curve parameters and compressed points (OpenSSL accepts them, Go and
// BoringSSL refuse the resulting leaf), and a CSR for one of the CA's own keys. Made by OpenSSL.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaClient } from '../helpers/ca_client.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';
import { mintToken } from './cli.ts';

let work: { path: string; cleanup: () => void };
let ca: TestCa;
let client: CaClient;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

/** A CSR for the key in `keyFile`. */
function csrFor(keyFile: string): string {
  const out = join(work.path, `${Math.random().toString(36).slice(2)}.csr`);
  openssl('req', '-new', '-key', keyFile, '-subj', '/CN=ignored', '-out', out);
  return readFileSync(out, 'utf8');
}

beforeAll(async () => {
  work = tempDir();
  ca = await startTestCa(['--db', `sqlite:${join(work.path, 'ledger.db')}`]);
  client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
});
afterAll(async () => {
  client.close();
  await ca.stop();
  work.cleanup();
});

async function refused(csr: string, message: RegExp): Promise<void> {
  const token = await mintToken(ca.keysDir, 'shop', 'web');
  const before = await ca.server.context.fullLedger!.query({ type: 'issuance', limit: 1000 });
  await expect(client.createCertificate({ csr, token })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(message) });
  const after = await ca.server.context.fullLedger!.query({ type: 'issuance', limit: 1000 });
  const added = after.slice(0, after.length - before.length).map((r) => r.event);
  expect(added).toHaveLength(1);
  expect(added[0]).toMatchObject({ decision: 'denied', errorCode: 'BAD_CSR' });
}

describe('CSRs the CA refuses', () => {
  it('refuses an EC key with explicit curve parameters', async () => {
    const key = join(work.path, 'explicit.pem');
    openssl('ecparam', '-name', 'prime256v1', '-param_enc', 'explicit', '-genkey', '-noout', '-out', key);
    await refused(csrFor(key), /CSR key uses explicit EC curve parameters.*named curve/);
  });

  it('refuses a compressed EC point', async () => {
    const key = join(work.path, 'named.pem');
    const compressed = join(work.path, 'compressed.pem');
    openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key);
    openssl('ec', '-in', key, '-conv_form', 'compressed', '-out', compressed);
    await refused(csrFor(compressed), /CSR key is a compressed EC point.*uncompressed/);
  });

  it("refuses a CSR for the CA's intermediate or root key", async () => {
    for (const file of ['ca-key.pem', 'root-key.pem']) {
      await refused(csrFor(join(ca.keysDir, file)), /CSR is for one of this CA's own keys \(a root or intermediate\)/);
    }
  });
});
