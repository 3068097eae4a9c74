// Issue 12, Medium 4: the identity policy (--deny-ids, --deny-namespaces, --allow-namespaces) holds
// on every authenticated API, through one admission step. An admin on --deny-ids used to run
// PrepareRoot (a new root was written) and a denied auditor still ran Verify.

import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminServiceClient } from '../../src/admin/index.ts';
import { auditServiceClient } from '../../src/audit/index.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';
import { sdsClient } from '../sds/envoy_client.ts';
import { cli, mintToken } from './cli.ts';

const ADMIN = 'spiffe://cluster.local/ns/ops/sa/rotator';
const AUDITOR = 'spiffe://cluster.local/ns/audit/sa/reader';

let work: { path: string; cleanup: () => void };
let ca: TestCa;

beforeAll(async () => {
  work = tempDir();
  ca = await startTestCa([
    '--db', `sqlite:${join(work.path, 'ledger.db')}`,
    '--sds',
    '--admins', ADMIN,
    '--auditors', AUDITOR,
    // The admin and the auditor are named in the roles above, and denied by the policy.
    '--deny-ids', ADMIN,
    '--deny-namespaces', 'audit,quarantine',
  ]);
});
afterAll(async () => {
  await ca.stop();
  work.cleanup();
});

function call<T>(client: grpc.Client, method: string, token: string, req: object = {}): Promise<T> {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) =>
    (client as unknown as Record<string, Function>)[method]!(req, md, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
  );
}

function connect(ctor: grpc.ServiceClientConstructor): grpc.Client {
  return new ctor(ca.server.grpcAddress, grpc.credentials.createSsl(Buffer.from(ca.rootPem)), { 'grpc.ssl_target_name_override': 'localhost' });
}

describe('the identity policy on every authenticated API', () => {
  it('refuses an admin on --deny-ids: PrepareRoot writes no new root', async () => {
    const client = connect(adminServiceClient());
    try {
      await expect(call(client, 'PrepareRoot', await mintToken(ca.keysDir, 'ops', 'rotator'))).rejects.toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
        details: `identity ${ADMIN} is on the deny list (--deny-ids)`,
      });
      await expect(call(client, 'Status', await mintToken(ca.keysDir, 'ops', 'rotator'))).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    } finally {
      client.close();
    }
    const status = await cli(['root', 'status', '--keys', ca.keysDir, '--json']);
    expect(JSON.parse(status.stdout).roots).toHaveLength(1);
  });

  it('refuses an auditor in a denied namespace: Verify and Query', async () => {
    const client = connect(auditServiceClient());
    try {
      const token = await mintToken(ca.keysDir, 'audit', 'reader');
      await expect(call(client, 'Verify', token)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: 'namespace "audit" is denied (--deny-namespaces)' });
      const stream = (client as unknown as Record<string, Function>).Query!({}, (() => {
        const md = new grpc.Metadata();
        md.set('authorization', `Bearer ${token}`);
        return md;
      })()) as grpc.ClientReadableStream<unknown>;
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        stream.on('data', () => undefined);
        stream.on('error', resolve);
        stream.on('end', () => resolve({ code: grpc.status.OK } as grpc.ServiceError));
      });
      expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    } finally {
      client.close();
    }
  });

  it('refuses CreateCertificate and CA-direct SDS to a denied namespace', async () => {
    const token = await mintToken(ca.keysDir, 'quarantine', 'web');
    const client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
    try {
      await expect(client.createCertificate({ csr: opensslCsr('ec-p256').csrPem, token })).rejects.toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
        details: 'namespace "quarantine" is denied (--deny-namespaces)',
      });
    } finally {
      client.close();
    }
    const sds = sdsClient(ca.server.grpcAddress, grpc.credentials.createSsl(Buffer.from(ca.rootPem)));
    try {
      await expect(call(sds, 'FetchSecrets', token, { resource_names: ['default'], type_url: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret' })).rejects.toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
      });
    } finally {
      sds.close();
    }
  });

  it('still serves an identity the policy admits', async () => {
    const client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
    try {
      const r = await client.createCertificate({ csr: opensslCsr('ec-p256').csrPem, token: await mintToken(ca.keysDir, 'shop', 'web') });
      expect(r.certChain.length).toBeGreaterThanOrEqual(3);
    } finally {
      client.close();
    }
  });
});
