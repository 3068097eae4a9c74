// SDS semantics over a real grpc-js server on a Unix socket, driven by an Envoy-like client.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/index.ts';
import { addSdsService, createSdsMetrics, SECRET_TYPE_URL, SecretStore, tlsCertificateSecret, trustedCaSecret, type SdsMetrics } from '../../src/sds/index.ts';
import { EnvoyLikeDeltaStream, EnvoyLikeStream, fetchSecrets, sdsClient } from './envoy_client.ts';

const QUIET_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function certSecret(n: number) {
  return tlsCertificateSecret('default', `-----BEGIN CERTIFICATE-----\nchain-${n}\n-----END CERTIFICATE-----\n`, `key-${n}`, 0);
}
function bundleSecret(n: number) {
  return trustedCaSecret('ROOTCA', `-----BEGIN CERTIFICATE-----\nroot-${n}\n-----END CERTIFICATE-----\n`);
}

let dir: string;
let server: grpc.Server;
let store: SecretStore;
let metrics: SdsMetrics;
let client: grpc.Client & Record<string, Function>;
let logText: string[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshca-sds-'));
  store = new SecretStore();
  metrics = createSdsMetrics();
  logText = [];
  const log = createLogger('debug', new Writable({ write: (c, _e, cb) => (logText.push(String(c)), cb()) }));
  server = new grpc.Server();
  addSdsService(server, { source: store, log, metrics });
  const socket = join(dir, 'sds.sock');
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  client = sdsClient(`unix:${socket}`);
});

afterEach(() => {
  client.close();
  server.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

describe('StreamSecrets', () => {
  it('sends default and ROOTCA with a version and nonce, and sends nothing more on ACK', async () => {
    store.set(certSecret(1), bundleSecret(1));
    const s = new EnvoyLikeStream(client, { names: ['default', 'ROOTCA'] });
    const r = await s.responses.waitFor(1);
    expect(r.version).not.toBe('');
    expect(r.nonce).not.toBe('');
    expect(r.secrets.get('default')!.chainPem).toContain('chain-1');
    expect(r.secrets.get('default')!.privateKeyPem).toBe('key-1');
    expect(r.secrets.get('ROOTCA')!.bundlePem).toContain('root-1');
    await sleep(QUIET_MS);
    expect(s.responses.all).toHaveLength(1);
    expect(metrics.snapshot()).toMatchObject({ acks: 1, nacks: 0, pushes: 1, streamsOpen: 1 });
    s.close();
  });

  it('pushes a changed secret on the open stream with a new version and nonce', async () => {
    store.set(certSecret(1));
    const s = new EnvoyLikeStream(client, { names: ['default'] });
    const first = await s.responses.waitFor(1);
    store.set(certSecret(2));
    const second = await s.responses.waitFor(2);
    expect(second.secrets.get('default')!.chainPem).toContain('chain-2');
    expect(second.version).not.toBe(first.version);
    expect(second.nonce).not.toBe(first.nonce);
    s.close();
  });

  it('logs and counts a NACK once and does not resend the rejected secret, then pushes the next change', async () => {
    store.set(certSecret(1));
    const s = new EnvoyLikeStream(client, { names: ['default'], nackResponse: 1 });
    await s.responses.waitFor(1);
    await sleep(QUIET_MS);
    expect(s.responses.all).toHaveLength(1);
    expect(metrics.snapshot().nacks).toBe(1);
    expect(logText.join('')).toContain('test NACK: rejecting this secret');
    store.set(certSecret(2));
    const next = await s.responses.waitFor(2);
    expect(next.secrets.get('default')!.chainPem).toContain('chain-2');
    s.close();
  });

  it('holds a request for a secret that does not exist yet and answers when it appears', async () => {
    const s = new EnvoyLikeStream(client, { names: ['default'] });
    await sleep(QUIET_MS);
    expect(s.responses.all).toHaveLength(0);
    store.set(certSecret(1));
    const r = await s.responses.waitFor(1);
    expect(r.secrets.get('default')!.chainPem).toContain('chain-1');
    s.close();
  });

  it('refuses an unknown type URL with INVALID_ARGUMENT naming it', async () => {
    store.set(certSecret(1));
    const s = new EnvoyLikeStream(client, { names: ['default'], typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster' });
    const err = await s.responses.waitForError();
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toContain('envoy.config.cluster.v3.Cluster');
    expect(s.responses.all).toHaveLength(0);
    await sleep(50);
    expect(metrics.snapshot().streamsOpen).toBe(0);
  });

  it('follows subscription changes and pushes only what a stream subscribed to', async () => {
    store.set(certSecret(1), bundleSecret(1));
    const s = new EnvoyLikeStream(client, { names: ['default'] });
    const first = await s.responses.waitFor(1);
    expect([...first.secrets.keys()]).toEqual(['default']);
    store.set(bundleSecret(2));
    await sleep(QUIET_MS);
    expect(s.responses.all).toHaveLength(1);
    s.resubscribe(['default', 'ROOTCA']);
    const both = await s.responses.waitFor(2);
    expect([...both.secrets.keys()].sort()).toEqual(['ROOTCA', 'default']);
    expect(both.secrets.get('ROOTCA')!.bundlePem).toContain('root-2');
    s.close();
  });

  it('pushes every change to every subscribed stream, with the same bytes', async () => {
    store.set(certSecret(1));
    const a = new EnvoyLikeStream(client, { names: ['default'] });
    const b = new EnvoyLikeStream(client, { names: ['default'] });
    await Promise.all([a.responses.waitFor(1), b.responses.waitFor(1)]);
    store.set(certSecret(2));
    const [ra, rb] = await Promise.all([a.responses.waitFor(2), b.responses.waitFor(2)]);
    expect(ra.version).toBe(rb.version);
    expect(ra.nonce).toBe(rb.nonce);
    expect(ra.secrets.get('default')).toEqual(rb.secrets.get('default'));
    a.close();
    b.close();
  });

  it('ignores a request answering an old nonce', async () => {
    store.set(certSecret(1), bundleSecret(1));
    const s = new EnvoyLikeStream(client, { names: ['default'] });
    const first = await s.responses.waitFor(1);
    store.set(certSecret(2));
    await s.responses.waitFor(2);
    // A late request answering the first response must not change the subscription.
    s.sendRaw({ resource_names: ['ROOTCA'], version_info: first.version, response_nonce: first.nonce });
    await sleep(QUIET_MS);
    expect(s.responses.all).toHaveLength(2);
    s.close();
  });
});

describe('DeltaSecrets', () => {
  it('sends only what changed, honours unsubscribe and reports removals', async () => {
    store.set(certSecret(1), bundleSecret(1));
    const d = new EnvoyLikeDeltaStream(client, ['default', 'ROOTCA']);
    const first = await d.responses.waitFor(1);
    expect([...first.secrets.keys()].sort()).toEqual(['ROOTCA', 'default']);
    store.set(certSecret(2));
    const second = await d.responses.waitFor(2);
    expect([...second.secrets.keys()]).toEqual(['default']);
    d.update([], ['ROOTCA']);
    await sleep(100);
    store.set(bundleSecret(2));
    await sleep(QUIET_MS);
    expect(d.responses.all).toHaveLength(2);
    store.remove('default');
    const third = await d.responses.waitFor(3);
    expect(third.removed).toEqual(['default']);
    expect(third.secrets.size).toBe(0);
    d.close();
  });

  it('does not resend a secret the proxy already holds after reconnecting', async () => {
    const secret = certSecret(1);
    store.set(secret, bundleSecret(1));
    const d = new EnvoyLikeDeltaStream(client, ['default', 'ROOTCA'], { default: secret.version });
    const first = await d.responses.waitFor(1);
    expect([...first.secrets.keys()]).toEqual(['ROOTCA']);
    d.close();
  });

  it('holds a subscription to a missing secret until it exists', async () => {
    const d = new EnvoyLikeDeltaStream(client, ['default']);
    await sleep(QUIET_MS);
    expect(d.responses.all).toHaveLength(0);
    store.set(certSecret(3));
    const r = await d.responses.waitFor(1);
    expect(r.secrets.get('default')!.chainPem).toContain('chain-3');
    d.close();
  });
});

describe('FetchSecrets', () => {
  it('answers with the current secrets', async () => {
    store.set(certSecret(1), bundleSecret(1));
    const r = await fetchSecrets(client, ['default', 'ROOTCA']);
    expect(r.secrets.get('default')!.chainPem).toContain('chain-1');
    expect(r.secrets.get('ROOTCA')!.bundlePem).toContain('root-1');
  });

  it('waits for a missing secret, and for a change when asked with the current version', async () => {
    const pending = fetchSecrets(client, ['default']);
    await sleep(QUIET_MS);
    store.set(certSecret(1));
    const r = await pending;
    expect(r.secrets.get('default')!.chainPem).toContain('chain-1');
    const longPoll = fetchSecrets(client, ['default'], r.version);
    await sleep(QUIET_MS);
    store.set(certSecret(2));
    expect((await longPoll).secrets.get('default')!.chainPem).toContain('chain-2');
  });

  it('refuses an unknown type URL', async () => {
    const err = await new Promise<grpc.ServiceError>((resolve) =>
      client.FetchSecrets!({ resource_names: ['default'], type_url: 'type.googleapis.com/nope' }, (e: grpc.ServiceError) => resolve(e)),
    );
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toContain(SECRET_TYPE_URL);
  });
});
