// `meshca serve --sds`: CA-direct SDS on the CA's own port, wired by the flag; a rotated trust
// bundle reaches open ROOTCA streams at once, not at the next periodic refresh.

import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDevIssuer } from '../../src/authn/index.ts';
import { loadSigningAuthority } from '../../src/pki/index.ts';
import { EnvoyLikeStream, sdsClient } from '../sds/envoy_client.ts';
import { startTestCa, type TestCa } from '../helpers/serve.ts';
import { makeTestAuthority } from '../helpers/test_ca.ts';

let ca: TestCa;
let client: grpc.Client & Record<string, Function>;

beforeAll(async () => {
  ca = await startTestCa(['--sds']);
  client = sdsClient(ca.server.grpcAddress, grpc.credentials.createSsl(Buffer.from(ca.rootPem)), );
});
afterAll(async () => {
  client?.close();
  await ca?.stop();
});

describe('serve --sds', () => {
  it('serves default and ROOTCA to a token-bearing proxy and pushes a new bundle within a second', async () => {
    const dev = await loadDevIssuer(ca.keysDir, false);
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${await dev.mint({ namespace: 'edge', serviceAccount: 'gw', audience: 'meshca', ttlMs: 600_000, nowMs: Date.now() })}`);
    const stream = new EnvoyLikeStream(client, { names: ['default', 'ROOTCA'], metadata: md });
    try {
      const first = await stream.responses.waitForSecret('default');
      expect(first.secrets.get('default')).toBeDefined();
      await stream.responses.waitForSecret('ROOTCA');
      const seen = stream.responses.all.length;

      // A second root joins the bundle (what `meshca root prepare` does), signing chain unchanged.
      const other = await makeTestAuthority();
      const current = ca.server.context.state.authority;
      const widened = loadSigningAuthority({
        chainPem: current.chainPem.join('') ,
        rootsPem: current.rootsPem.join('') + other.rootPem,
        signer: current.template.signer,
        nowMs: Date.now(),
      });
      const changedAt = Date.now();
      ca.server.context.state.update(widened);
      const pushed = await stream.responses.waitFor(seen + 1, 3000);
      expect(Date.now() - changedAt).toBeLessThan(1000);
      expect(pushed.secrets.get('ROOTCA')!.bundlePem).toContain(other.rootPem.trim());
    } finally {
      stream.close();
    }
  });

  it('refuses a stream without credentials', async () => {
    const stream = new EnvoyLikeStream(client, { names: ['default'] });
    try {
      const err = await stream.responses.waitForError();
      expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      stream.close();
    }
  });
});
