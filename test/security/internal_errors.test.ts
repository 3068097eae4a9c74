// Issue 12, Low: an INTERNAL error used to send its internal message (a database host, a stack
// detail) to the client. Now the client gets a generic message with a correlation id, and the log
// line with the same id carries the detail. Through the real server.

import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authenticator } from '../../src/authn/index.ts';
import { CaClient } from '../helpers/ca_client.ts';
import { opensslCsr } from '../helpers/csr.ts';
import { startTestCa, type TestCa } from '../helpers/serve.ts';

const SECRET_DETAIL = 'connect ECONNREFUSED pg.internal.example:5432';

/** Vouches for the token "boom" with a caller that breaks when read, as a bug deep inside would. */
const breaking: Authenticator = {
  name: 'breaking',
  async authenticate(req) {
    if (req.bearerToken !== 'boom') return { ok: false, kind: 'skip', reason: 'not boom' };
    return {
      ok: true,
      caller: {
        get spiffeId(): never {
          throw new Error(SECRET_DETAIL);
        },
        authenticator: 'breaking',
      },
    };
  },
};

let ca: TestCa;
let client: CaClient;

beforeAll(async () => {
  ca = await startTestCa([], { deps: { extraAuthenticators: () => [breaking] } });
  client = new CaClient({ address: ca.server.grpcAddress, rootPem: ca.rootPem, serverName: 'localhost' });
});
afterAll(async () => {
  client.close();
  await ca.stop();
});

describe('internal errors', () => {
  it('answer with a generic message and a correlation id that the log line with the detail also carries', async () => {
    let caught: grpc.ServiceError | undefined;
    try {
      await client.createCertificate({ csr: opensslCsr().csrPem, token: 'boom' });
    } catch (err) {
      caught = err as grpc.ServiceError;
    }
    expect(caught?.code).toBe(grpc.status.INTERNAL);
    const m = /^internal error \(correlation id ([0-9a-f]{16})\); the CA log has the details$/.exec(caught!.details);
    expect(m).not.toBeNull();
    expect(caught!.details).not.toContain('pg.internal');
    const line = ca.logs.find((l) => l.correlationId === m![1]);
    expect(line).toMatchObject({ msg: 'internal error', level: 'error' });
    expect(JSON.stringify(line)).toContain(SECRET_DETAIL);
    // One failure, one id: the request's summary line names the same id.
    expect(ca.logs.filter((l) => JSON.stringify(l).includes(m![1]!)).every((l) => l.correlationId === m![1] || String(l.reason).includes(m![1]!))).toBe(true);
  });
});
