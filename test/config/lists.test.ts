// List settings (--deny-namespaces, --san, --auditors…) mean the same from every source: a flag with
// commas, repeated flags, a MESHCA_* variable and a YAML list or comma-separated string.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createIdentityPolicy } from '../../src/authn/index.ts';
import { loadSettings } from '../../src/config/index.ts';
import { serveConfigFrom, SERVE_OPTIONS } from '../../src/server/index.ts';
import { parseSpiffeId } from '../../src/spiffe/index.ts';
import { badConfigMessage } from './bad_config.ts';
import { tempDir } from '../helpers/serve.ts';

const work = tempDir();
afterAll(() => work.cleanup());

const CMD = { settings: ['deny-namespaces', 'san'] } as const;

function yamlFile(name: string, text: string): string {
  const path = join(work.path, name);
  writeFileSync(path, text);
  return path;
}

function denyNamespaces(argv: string[], env: Record<string, string> = {}): readonly string[] | undefined {
  return loadSettings(CMD, argv, env).values['deny-namespaces'];
}

describe('list settings', () => {
  it('splits a flag value on commas', () => {
    expect(denyNamespaces(['--deny-namespaces', 'a,b'])).toEqual(['a', 'b']);
    expect(denyNamespaces(['--deny-namespaces=a, b'])).toEqual(['a', 'b']);
  });

  it('collects repeated flags, each of which may hold commas', () => {
    expect(denyNamespaces(['--deny-namespaces', 'a', '--deny-namespaces', 'b'])).toEqual(['a', 'b']);
    expect(denyNamespaces(['--deny-namespaces', 'a,b', '--deny-namespaces', 'c'])).toEqual(['a', 'b', 'c']);
  });

  it('splits a MESHCA_* variable on commas', () => {
    expect(denyNamespaces([], { MESHCA_DENY_NAMESPACES: 'a,b' })).toEqual(['a', 'b']);
  });

  it('reads a YAML list and a YAML comma-separated string alike', () => {
    const list = yamlFile('list.yaml', 'deny-namespaces:\n  - a\n  - b\n');
    const text = yamlFile('text.yaml', 'deny-namespaces: a,b\n');
    const mixed = yamlFile('mixed.yaml', 'deny-namespaces: [a, "b,c"]\n');
    expect(denyNamespaces(['--config', list])).toEqual(['a', 'b']);
    expect(denyNamespaces(['--config', text])).toEqual(['a', 'b']);
    expect(denyNamespaces(['--config', mixed])).toEqual(['a', 'b', 'c']);
  });

  it('defaults to the empty list, and an empty value means the empty list', () => {
    expect(denyNamespaces([])).toEqual([]);
    expect(denyNamespaces([], { MESHCA_DENY_NAMESPACES: '' })).toEqual([]);
    expect(denyNamespaces(['--config', yamlFile('empty.yaml', 'deny-namespaces: []\n')])).toEqual([]);
  });

  it('refuses an empty element, naming the setting and where it came from', () => {
    expect(badConfigMessage(() => denyNamespaces(['--deny-namespaces', 'a,,b']))).toMatch(/^--deny-namespaces: empty element in "a,,b"/);
    expect(badConfigMessage(() => denyNamespaces(['--deny-namespaces', 'a,']))).toMatch(/^--deny-namespaces: empty element/);
    expect(badConfigMessage(() => denyNamespaces(['--deny-namespaces', 'a', '--deny-namespaces', '']))).toMatch(/^--deny-namespaces: empty element/);
    expect(badConfigMessage(() => denyNamespaces([], { MESHCA_DENY_NAMESPACES: 'a,,b' }))).toMatch(/^MESHCA_DENY_NAMESPACES: empty element/);
    const yaml = yamlFile('bad.yaml', 'deny-namespaces: [a, ""]\n');
    expect(badConfigMessage(() => denyNamespaces(['--config', yaml]))).toMatch(/^deny-namespaces in .*bad\.yaml: empty element/);
    expect(badConfigMessage(() => denyNamespaces(['--config', yamlFile('nested.yaml', 'deny-namespaces: [[a]]\n')]))).toMatch(/expected a list of strings/);
  });

  it('serve --deny-namespaces a,b denies both namespaces', () => {
    const { values } = loadSettings(SERVE_OPTIONS, ['--deny-namespaces', 'a,b'], {});
    const config = serveConfigFrom(values);
    expect(config.policy.denyNamespaces).toEqual(['a', 'b']);
    const policy = createIdentityPolicy(config.policy);
    const caller = (ns: string) => ({ spiffeId: parseSpiffeId(`spiffe://cluster.local/ns/${ns}/sa/default`), authenticator: 'jwt', namespace: ns });
    expect(policy.check(caller('a'))).toMatchObject({ ok: false, rule: 'deny-namespaces' });
    expect(policy.check(caller('b'))).toMatchObject({ ok: false, rule: 'deny-namespaces' });
    expect(policy.check(caller('c'))).toEqual({ ok: true });
  });
});
