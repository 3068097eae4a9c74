// Settings are parsed once into the types the code uses, every default comes from the table (which
// takes it from the owning module), and a command's values are typed so that what has a default
// or is required is never undefined.

import { availableParallelism } from 'node:os';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { DEFAULT_LEAF_TTL_MS, MAX_LEAF_TTL_MS } from '../../src/ca/index.ts';
import { formatHelp, loadSettings, type Settings } from '../../src/config/index.ts';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_INTERVAL_MS } from '../../src/ledger/index.ts';
import { DEFAULT_CA_TTL_MS, DEFAULT_KEY_TYPE, DEFAULT_ROOT_TTL_MS, type KeyType } from '../../src/pki/index.ts';
import { DEFAULT_CA_EXPIRY_WARNING_MS, DEFAULT_KEYS_POLL_MS, DEFAULT_ROOT_EXPIRY_WARNING_MS } from '../../src/rotation/index.ts';
import { serveConfigFrom, SERVE_OPTIONS } from '../../src/server/index.ts';
import { cgroupCpuLimit } from '../../src/server/cpu_limit.ts';
import type { SpiffeId } from '../../src/spiffe/index.ts';
import type { ListenAddress } from '../../src/transport/index.ts';
import { badConfigMessage } from './bad_config.ts';

const CA_INIT = { settings: ['keys', 'key-type', 'root-ttl', 'ca-ttl', 'root-cert', 'auditors'], required: ['root-cert'] } as const;

describe('typed settings', () => {
  it('types defaulted and required settings as always set, others as optional', () => {
    type V = Settings<typeof CA_INIT>;
    expectTypeOf<V['keys']>().toEqualTypeOf<string>();
    expectTypeOf<V['key-type']>().toEqualTypeOf<KeyType>();
    expectTypeOf<V['root-ttl']>().toEqualTypeOf<number>();
    expectTypeOf<V['root-cert']>().toEqualTypeOf<string>();
    expectTypeOf<V['auditors']>().toEqualTypeOf<readonly SpiffeId[]>();
    expectTypeOf<V['help']>().toEqualTypeOf<boolean>();
    expectTypeOf<V>().toHaveProperty('config').toEqualTypeOf<string | undefined>();
    type Serve = Settings<typeof SERVE_OPTIONS>;
    expectTypeOf<Serve['checkpoint-every']>().toEqualTypeOf<number>();
    expectTypeOf<Serve['listen']>().toEqualTypeOf<ListenAddress>();
    expectTypeOf<Serve['jwks-file']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<Serve['authn']>().toEqualTypeOf<'none' | 'tokenreview' | 'jwks' | 'both'>();
  });

  it('parses once: key type, durations in whole milliseconds, SPIFFE IDs', () => {
    const { values } = loadSettings(CA_INIT, ['--root-cert', 'r.pem', '--key-type', 'rsa-3072', '--root-ttl', '1.5s', '--auditors', 'spiffe://cluster.local/ns/a/sa/b'], {});
    expect(values['key-type']).toBe('rsa-3072');
    expect(values['root-ttl']).toBe(1500);
    expect(values.auditors.map((id) => id.uri)).toEqual(['spiffe://cluster.local/ns/a/sa/b']);
    expect(Object.isFrozen(values)).toBe(true);
  });

  it('parses listen addresses once into host and port', () => {
    const serve = (argv: string[], env: Record<string, string> = {}) => serveConfigFrom(loadSettings(SERVE_OPTIONS, argv, env).values);
    expect(serve([]).listen).toEqual({ host: '0.0.0.0', port: 15012 });
    expect(serve(['--listen', '[::1]:0']).listen).toEqual({ host: '::1', port: 0 });
    expect(serve([], { MESHCA_HTTP_LISTEN: '127.0.0.1:9000' }).httpListen).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(badConfigMessage(() => serve(['--http-listen', '127.0.0.1:99999']))).toBe('--http-listen "127.0.0.1:99999" is not host:port (e.g. 0.0.0.0:15012, [::]:15012, 127.0.0.1:0)');
  });

  it('--workers: 1 by default (one process), a whole number up to 256, or auto (one per CPU it may use); anything else refused', () => {
    const workers = (argv: string[], env: Record<string, string> = {}) => serveConfigFrom(loadSettings(SERVE_OPTIONS, argv, env).values).workers;
    expect(workers([])).toBe(1);
    expect(workers(['--workers', '4'])).toBe(4);
    expect(workers([], { MESHCA_WORKERS: '2' })).toBe(2);
    expect(workers(['--workers', 'auto'])).toBe(Math.min(availableParallelism(), Math.ceil(cgroupCpuLimit() ?? Infinity), 256));
    for (const bad of ['0', '1.5', 'two', '', '01', '257', '1e2', ' 2', '0x2']) {
      expect(badConfigMessage(() => workers([`--workers=${bad}`]))).toBe(`--workers "${bad}": give a whole number from 1 to 256, or auto (one per CPU this process may use)`);
    }
  });

  it('refuses a bad value at start-up, naming the setting', () => {
    expect(badConfigMessage(() => loadSettings(CA_INIT, ['--root-cert', 'r', '--key-type', 'dsa'], {}))).toMatch(/^--key-type: "dsa" is not one of ec-p256/);
    expect(badConfigMessage(() => loadSettings(CA_INIT, ['--root-cert', 'r'], { MESHCA_AUDITORS: 'spiffe://cluster.local/a,https://x/y' }))).toMatch(/^MESHCA_AUDITORS: /);
    expect(badConfigMessage(() => loadSettings(CA_INIT, [], {}))).toBe('--root-cert is required (or set MESHCA_ROOT_CERT)');
  });

  it("takes every default from the owning module's constant", () => {
    const { values } = loadSettings(CA_INIT, ['--root-cert', 'r'], {});
    expect(values['key-type']).toBe(DEFAULT_KEY_TYPE);
    expect(values['root-ttl']).toBe(DEFAULT_ROOT_TTL_MS);
    expect(values['ca-ttl']).toBe(DEFAULT_CA_TTL_MS);
    const config = serveConfigFrom(loadSettings(SERVE_OPTIONS, [], {}).values);
    expect(config.ttl).toEqual({ defaultTtlMs: DEFAULT_LEAF_TTL_MS, maxTtlMs: MAX_LEAF_TTL_MS });
    expect(config.checkpointEvery).toBe(DEFAULT_CHECKPOINT_EVERY);
    expect(config.checkpointIntervalMs).toBe(DEFAULT_CHECKPOINT_INTERVAL_MS);
    expect(config.rotation).toMatchObject({
      keysPollMs: DEFAULT_KEYS_POLL_MS,
      rootExpiryWarningMs: DEFAULT_ROOT_EXPIRY_WARNING_MS,
      caExpiryWarningMs: DEFAULT_CA_EXPIRY_WARNING_MS,
      rootTtlMs: DEFAULT_ROOT_TTL_MS,
      caTtlMs: DEFAULT_CA_TTL_MS,
      keyType: DEFAULT_KEY_TYPE,
    });
    expect(Object.isFrozen(config)).toBe(true);
    // serve's admin API prepares roots with --root-ttl, as `meshca root prepare` does.
    expect(serveConfigFrom(loadSettings(SERVE_OPTIONS, ['--root-ttl', '400d'], {}).values).rotation.rootTtlMs).toBe(400 * 86_400_000);
  });

  it('--help shows each default as an operator writes it', () => {
    const help = formatHelp('meshca serve', 'run the CA', SERVE_OPTIONS);
    expect(help).toMatch(/--max-ttl <duration> +.*\(default 24h\) +\[MESHCA_MAX_TTL\]/);
    expect(help).toMatch(/--ca-ttl <duration> +.*\(default 365d\)/);
    expect(help).toMatch(/--checkpoint-every <int> +.*\(default 1000\)/);
    expect(help).toMatch(/--checkpoint-interval <duration> +.*\(default 1m\)/);
    expect(help).toMatch(/--key-type <ec-p256\|ec-p384\|rsa-2048\|rsa-3072\|rsa-4096> +key algorithm \(default ec-p256\)/);
    expect(help).toMatch(/--listen <address> +.*\(default 0\.0\.0\.0:15012\)/);
  });
});
