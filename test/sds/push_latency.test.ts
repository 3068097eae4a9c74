// meshca_sds_push_duration_seconds: from a secret change (SecretChange.atMs, the store's Clock) to
// the response written on each open stream, SotW and delta, measured with the fake clock.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/index.ts';
import { addSdsService, createSdsMetrics, SecretStore, tlsCertificateSecret, type SecretSource } from '../../src/sds/index.ts';
import { FakeClock } from '../fakes/clock.ts';
import { EnvoyLikeDeltaStream, EnvoyLikeStream, sdsClient } from './envoy_client.ts';

const DELAY_MS = 250;

function certSecret(n: number) {
  return tlsCertificateSecret('default', `-----BEGIN CERTIFICATE-----\nchain-${n}\n-----END CERTIFICATE-----\n`, `key-${n}`, 0);
}

let dir: string;
let server: grpc.Server;
let client: grpc.Client & Record<string, Function>;
let clock: FakeClock;
let store: SecretStore;
let registry: Registry;

/** A source that hands the store's changes on DELAY_MS later (like one that coalesces changes). */
function delayed(inner: SecretStore): SecretSource {
  return {
    get: (name) => inner.get(name),
    names: () => inner.names(),
    subscribe: (listener) => inner.subscribe((change) => void clock.setTimer(DELAY_MS, () => listener(change))),
  };
}

async function pushHistogram(): Promise<{ count: number; sum: number; buckets: Map<string, number> }> {
  const text = await registry.getSingleMetricAsString('meshca_sds_push_duration_seconds');
  const sample = (name: string) => Number(new RegExp(`^meshca_sds_push_duration_seconds_${name} (\\S+)$`, 'm').exec(text)![1]);
  const buckets = new Map([...text.matchAll(/^meshca_sds_push_duration_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
  return { count: sample('count'), sum: sample('sum'), buckets };
}

async function serve(source: SecretSource): Promise<void> {
  server = new grpc.Server();
  addSdsService(server, { source, log: createLogger('silent'), metrics: createSdsMetrics(registry, clock) });
  const socket = join(dir, 'sds.sock');
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  client = sdsClient(`unix:${socket}`);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshca-sds-latency-'));
  clock = new FakeClock();
  store = new SecretStore(clock);
  registry = new Registry();
});

afterEach(() => {
  client.close();
  server.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

it('observes, on each SotW and delta stream, the time from the change to the push; answers to requests are not pushes of a change', async () => {
  await serve(delayed(store));
  store.set(certSecret(1));
  const sotw = new EnvoyLikeStream(client, { names: ['default'] });
  const delta = new EnvoyLikeDeltaStream(client, ['default']);
  await sotw.responses.waitFor(1);
  await delta.responses.waitFor(1);
  await clock.advance(DELAY_MS);
  expect((await pushHistogram()).count).toBe(0);

  store.set(certSecret(2));
  await clock.advance(DELAY_MS);
  expect((await sotw.responses.waitFor(2)).secrets.get('default')!.chainPem).toContain('chain-2');
  expect((await delta.responses.waitFor(2)).secrets.get('default')!.chainPem).toContain('chain-2');
  const h = await pushHistogram();
  expect(h.count).toBe(2);
  expect(h.sum).toBeCloseTo((2 * DELAY_MS) / 1000, 6);
  expect(h.buckets.get('0.1')).toBe(0);
  expect(h.buckets.get('0.25')).toBe(2);
  sotw.close();
  delta.close();
});

it('a store change reaches the streams in the same tick: observed as 0 s', async () => {
  await serve(store);
  store.set(certSecret(1));
  const sotw = new EnvoyLikeStream(client, { names: ['default'] });
  await sotw.responses.waitFor(1);
  store.set(certSecret(2));
  await sotw.responses.waitFor(2);
  const h = await pushHistogram();
  expect(h).toMatchObject({ count: 1, sum: 0 });
  expect(h.buckets.get('0.001')).toBe(1);
  sotw.close();
});
