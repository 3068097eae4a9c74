// The auditor API over real gRPC and real mutual TLS: auditors get the ledger, everyone else is
// refused, every call is itself recorded, and nothing is answered that could not be recorded.

import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditServiceClient, createAuditService, type AuditServiceDeps } from '../../src/audit/index.ts';
import { MeshcaError } from '../../src/errors/index.ts';
import { canonicalJson, openLedger, type Ledger } from '../../src/ledger/index.ts';
import { chainWithBundle, issueServingCertificate, issueSvid } from '../../src/pki/index.ts';
import { parseSpiffeId } from '../../src/spiffe/index.ts';
import { systemClock } from '../../src/time/index.ts';
import { makeLedgerKey, makeTestAuthority, type TestAuthority } from '../ledger/test_ca.ts';

const AUDITOR = 'spiffe://cluster.local/ns/security/sa/auditor';
const STRANGER = 'spiffe://cluster.local/ns/default/sa/curious';

interface Identity {
  certPem: string;
  keyPem: string;
}

async function identityFor(ca: TestAuthority, spiffeId: string): Promise<Identity> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = await issueSvid(ca.authority, spiffeId, { spkiDer: publicKey.export({ format: 'der', type: 'spki' }), keyAlgorithm: { kind: 'ec', curve: 'P-256' }, ttlMs: 3_600_000, nowMs: Date.now() });
  return { certPem: chainWithBundle(ca.authority, cert.pem).slice(0, -1).join(''), keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string };
}

/** Reads the URI SAN of a client certificate the test CA issued, as the CA's mTLS authenticator does. */
function fakeAuthenticate(ca: TestAuthority): AuditServiceDeps['authenticate'] {
  return async (call) => {
    const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
    if (!raw) throw new MeshcaError('UNAUTHENTICATED', 'no client certificate; present an SVID this CA issued');
    const cert = new X509Certificate(raw);
    if (!cert.verify(ca.authority.certificate.publicKey)) throw new MeshcaError('UNAUTHENTICATED', 'client certificate not issued by this CA');
    const uri = /URI:([^,\s]+)/.exec(cert.subjectAltName ?? '')?.[1];
    if (!uri) throw new MeshcaError('UNAUTHENTICATED', 'client certificate has no SPIFFE ID');
    return { spiffeId: parseSpiffeId(uri), authenticator: 'mtls' };
  };
}

type Client = grpc.Client & Record<string, Function>;

function query(client: Client, req: Record<string, unknown>): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const out: Record<string, unknown>[] = [];
    const stream = client.Query!(req, { deadline: Date.now() + 10_000 }) as grpc.ClientReadableStream<Record<string, unknown>>;
    stream.on('data', (r) => out.push(r));
    stream.on('error', (err) => reject(Object.assign(err, { received: out })));
    stream.on('end', () => resolve(out));
  });
}

function verify(client: Client): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => client.Verify!({}, { deadline: Date.now() + 10_000 }, (err: Error | null, res: Record<string, unknown>) => (err ? reject(err) : resolve(res))));
}

describe('meshca.audit.v1 over mutual TLS', () => {
  let ca: TestAuthority;
  let dir: string;
  let ledger: Ledger;
  let server: grpc.Server;
  let address: string;
  let auditor: Client;
  let stranger: Client;
  let anonymous: Client;
  let appendFails = false;

  beforeAll(async () => {
    ca = await makeTestAuthority(Date.now());
    dir = mkdtempSync(join(tmpdir(), 'meshca-audit-'));
    ledger = await openLedger(`sqlite:${join(dir, 'ledger.db')}`, { ledgerKey: makeLedgerKey(), checkpointEvery: 5 });
    for (let i = 1; i <= 12; i++) {
      await ledger.append({
        type: 'issuance', timeMs: Date.now() - 1000 + i, decision: i === 12 ? 'denied' : 'granted', reason: i === 12 ? 'namespace denied' : 'issued', channel: 'CreateCertificate',
        spiffeId: `spiffe://cluster.local/ns/payments/sa/${i % 2 ? 'web' : 'db'}`, namespace: 'payments', serviceAccount: i % 2 ? 'web' : 'db', serial: `7f${String(i).padStart(4, '0')}`,
      });
    }
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const serving = await issueServingCertificate(ca.authority, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }, { spkiDer: publicKey.export({ format: 'der', type: 'spki' }), keyAlgorithm: { kind: 'ec', curve: 'P-256' }, ttlMs: 3_600_000, nowMs: Date.now() });
    const recording: AuditServiceDeps['ledger'] = {
      append: (e) => (appendFails ? Promise.reject(new MeshcaError('LEDGER_UNAVAILABLE', 'ledger sqlite:… could not record: disk I/O error')) : ledger.append(e)),
      query: (q) => ledger.query(q),
      verify: () => ledger.verify(),
    };
    const { service, handlers } = createAuditService({ ledger: recording, auditors: [AUDITOR], authenticate: fakeAuthenticate(ca), clock: systemClock });
    server = new grpc.Server();
    server.addService(service, handlers);
    // Client certificates are asked for but not required (as meshca serve does), so the
    // "no identity" path is reachable and the authenticator decides.
    const provider: grpc.experimental.CertificateProvider = {
      // grpc-js listens only after adding the listener: deliver on a microtask or it is lost.
      addCaCertificateListener: (l) => queueMicrotask(() => l({ caCertificate: Buffer.from(ca.rootPem) })),
      removeCaCertificateListener: () => undefined,
      addIdentityCertificateListener: (l) =>
        queueMicrotask(() => l({ certificate: Buffer.from(chainWithBundle(ca.authority, serving.pem).slice(0, -1).join('')), privateKey: Buffer.from(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string) })),
      removeIdentityCertificateListener: () => undefined,
    };
    const creds = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
    address = `127.0.0.1:${port}`;
    const Ctor = auditServiceClient();
    const connect = (id?: Identity): Client =>
      new Ctor(address, grpc.credentials.createSsl(Buffer.from(ca.rootPem), id ? Buffer.from(id.keyPem) : null, id ? Buffer.from(id.certPem) : null), {
        'grpc.ssl_target_name_override': 'localhost',
      }) as Client;
    auditor = connect(await identityFor(ca, AUDITOR));
    stranger = connect(await identityFor(ca, STRANGER));
    anonymous = connect();
  });

  afterAll(async () => {
    for (const c of [auditor, stranger, anonymous]) c?.close();
    server?.forceShutdown();
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams an auditor the records that match, each with the canonical event its hash covers', async () => {
    const records = await query(auditor, { spiffe_id: 'spiffe://cluster.local/ns/payments/sa/db', limit: 3 });
    expect(records.map((r) => r.seq)).toEqual([12, 10, 8]);
    expect(records[0]).toMatchObject({ decision: 'denied', serial: '7f0012' });
    const r = records[1]!;
    expect(r).toMatchObject({ type: 'issuance', decision: 'granted', spiffe_id: 'spiffe://cluster.local/ns/payments/sa/db', serial: '7f0010' });
    const event = JSON.parse(String(r.event_json));
    expect(createHash('sha256').update(canonicalJson({ event, prev: r.prev_hash, seq: r.seq })).digest('hex')).toBe(r.hash);
    expect((await query(auditor, { denied_only: true })).map((x) => x.seq)).toEqual([12]);
    expect((await query(auditor, { serial: '7F:00:03' })).map((x) => x.seq)).toEqual([3]);
  });

  it('records every auditor query in the ledger, with who asked and what', async () => {
    await query(auditor, { namespace: 'payments', service_account: 'web', limit: 2 });
    const [last] = await ledger.query({ type: 'audit-query', limit: 1 });
    expect(last!.event).toMatchObject({ type: 'audit-query', caller: AUDITOR, authenticator: 'mtls', method: 'Query', decision: 'granted', filter: { namespace: 'payments', serviceAccount: 'web', limit: 2 }, peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
  });

  it('refuses a caller who is not an auditor with PERMISSION_DENIED, sends nothing, and records the refusal', async () => {
    const err = (await query(stranger, {}).catch((e: unknown) => e)) as grpc.ServiceError & { received: unknown[] };
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toContain(`${STRANGER} is not an auditor`);
    expect(err.received).toEqual([]);
    await expect(verify(stranger)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    const [last] = await ledger.query({ type: 'audit-query', deniedOnly: true, limit: 1 });
    expect(last!.event).toMatchObject({ caller: STRANGER, decision: 'denied', method: 'Verify' });
  });

  it('refuses a caller without a client certificate with UNAUTHENTICATED and records it', async () => {
    await expect(query(anonymous, {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringContaining('no client certificate') });
    const [last] = await ledger.query({ type: 'audit-query', limit: 1 });
    expect(last!.event).toMatchObject({ caller: 'unauthenticated', decision: 'denied', method: 'Query' });
  });

  it('rejects a bad filter with INVALID_ARGUMENT naming it', async () => {
    await expect(query(auditor, { limit: 50_000 })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('limit 50000') });
    await expect(query(auditor, { spiffe_id: 'not-a-spiffe-id' })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });

  it('answers nothing when the query cannot be recorded: UNAVAILABLE', async () => {
    appendFails = true;
    try {
      const err = (await query(auditor, {}).catch((e: unknown) => e)) as grpc.ServiceError & { received: unknown[] };
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
      expect(err.received).toEqual([]);
    } finally {
      appendFails = false;
    }
  });

  it('Verify reports an honest chain, then names a tampered record', async () => {
    expect(await verify(auditor)).toMatchObject({ ok: true, signatures_checked: true, problems: [] });
    const { DatabaseSync } = await import('node:sqlite');
    const raw = new DatabaseSync(join(dir, 'ledger.db'));
    raw.prepare("UPDATE meshca_ledger_records SET event = replace(event, 'namespace denied', 'issued') WHERE seq = 12").run();
    raw.close();
    const report = await verify(auditor);
    expect(report.ok).toBe(false);
    expect((report.problems as Record<string, unknown>[])[0]).toMatchObject({ kind: 'altered', seq: 12 });
  });
});
