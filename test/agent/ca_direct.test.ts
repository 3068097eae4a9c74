// CA-direct SDS (the weaker mode) through the real CA server over TLS, wired the way `meshca serve
// --sds` wires it: a proxy presents its token in the stream metadata and the CA makes its key.

import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLedger } from '../../src/ledger/open.ts';
import { authenticateCall, createCaDirectSds, type CaDirectSds } from '../../src/server/index.ts';
import { startTestCa, type TestCa } from '../helpers/serve.ts';
import { FakeClock } from '../fakes/clock.ts';
import { EnvoyLikeStream, sdsClient } from '../sds/envoy_client.ts';
import { keyMatchesLeaf, opensslVerifyServed, pemBlocks, scratchDir, spiffeIdOf, writeToken } from './harness.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function caWithSds(ttlMs: number): Promise<{ ca: TestCa; dir: string; keysDir: string; clock: FakeClock }> {
  const scratch = scratchDir();
  cleanups.push(scratch.cleanup);
  const keysDir = join(scratch.path, 'keys');
  let sds: CaDirectSds | undefined;
  // Starts at the real time: the served certificates are also checked by openssl and TLS.
  // On a whole second, as X.509 times are, so a 10 s certificate lives exactly 10 s.
  const clock = new FakeClock(Math.ceil(Date.now() / 1000) * 1000);
  const ca = await startTestCa([], {
    keysDir,
    clock,
    deps: {
      registerServices: (server, ctx) => {
        sds = createCaDirectSds({
          issuer: ctx.issuer,
          authenticate: (_md, call) => authenticateCall(call as grpc.ServerUnaryCall<unknown, unknown>, ctx),
          bundlePem: () => ctx.state.authority.rootsPem,
          clock: ctx.clock,
          log: ctx.log,
          ttlMs,
        });
        sds.register(server);
      },
    },
  });
  cleanups.push(async () => {
    sds?.close();
    await ca.stop();
  });
  return { ca, dir: scratch.path, keysDir, clock };
}

function tlsClient(ca: TestCa): grpc.Client & Record<string, Function> {
  const client = sdsClient(ca.server.grpcAddress, grpc.credentials.createSsl(Buffer.from(ca.rootPem)));
  cleanups.push(() => client.close());
  return client;
}

describe('CA-direct SDS', () => {
  it('issues a CA-made key for the token-bearing proxy and serves the bundle as ROOTCA', async () => {
    const { ca, dir, keysDir } = await caWithSds(3_600_000);
    await writeToken(keysDir, join(dir, 'token'), 'edge', 'gateway');
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${readFileSync(join(dir, 'token'), 'utf8')}`);
    const stream = new EnvoyLikeStream(tlsClient(ca), { names: ['default', 'ROOTCA'], metadata: md });
    cleanups.push(() => stream.close());
    // ROOTCA exists at once; default follows as soon as the CA has made the key.
    const r = await stream.responses.waitForSecret('default');
    const cert = r.secrets.get('default')!;
    expect(spiffeIdOf(pemBlocks(cert.chainPem!)[0]!)).toBe('spiffe://cluster.local/ns/edge/sa/gateway');
    expect(keyMatchesLeaf(cert)).toBe(true);
    expect(r.secrets.get('ROOTCA')!.bundlePem).toBe(ca.rootPem);
    expect(opensslVerifyServed(cert.chainPem!, ca.rootPem)).toContain('OK');
    const issued = (ca.server.context.ledger as ReturnType<typeof memoryLedger>).events.filter((e) => e.type === 'issuance' && e.channel === 'SDS');
    expect(issued).toHaveLength(1);
    expect(issued[0]).toMatchObject({ decision: 'granted', spiffeId: 'spiffe://cluster.local/ns/edge/sa/gateway' });
  });

  it('renews and pushes at half-life with a new key', async () => {
    const { ca, dir, keysDir, clock } = await caWithSds(10_000);
    await writeToken(keysDir, join(dir, 'token'));
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${readFileSync(join(dir, 'token'), 'utf8')}`);
    const stream = new EnvoyLikeStream(tlsClient(ca), { names: ['default'], metadata: md });
    cleanups.push(() => stream.close());
    const first = await stream.responses.waitFor(1);
    // Not before 45% of the 10 s lifetime…
    await clock.advance(4_400);
    const issued = () => (ca.server.context.ledger as ReturnType<typeof memoryLedger>).events.filter((e) => e.type === 'issuance' && e.channel === 'SDS');
    expect(issued()).toHaveLength(1);
    // …and by 55% of it.
    await clock.advance(1_200);
    const second = await stream.responses.waitFor(2);
    expect(issued()).toHaveLength(2);
    expect(second.secrets.get('default')!.privateKeyPem).not.toBe(first.secrets.get('default')!.privateKeyPem);
    expect(keyMatchesLeaf(second.secrets.get('default')!)).toBe(true);
  });

  it('refuses a stream without a token as UNAUTHENTICATED and issues nothing', async () => {
    const { ca } = await caWithSds(3_600_000);
    const stream = new EnvoyLikeStream(tlsClient(ca), { names: ['default'] });
    const err = await stream.responses.waitForError();
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(stream.responses.all).toHaveLength(0);
    // The CA's own serving certificate is recorded too (channel serving-cert); the stream got nothing.
    const issued = (ca.server.context.ledger as ReturnType<typeof memoryLedger>).events.filter((e) => e.type === 'issuance' && e.decision === 'granted' && e.channel !== 'serving-cert');
    expect(issued).toHaveLength(0);
  });
});
