// Settings that would silently weaken the CA are start-up errors of the real `meshca serve`:
// an http JWKS URL (issue 12, Medium 9) and a namespace list naming something that cannot be a
// Kubernetes namespace (Medium 2). Each run exits non-zero with one line naming the setting.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/serve.ts';
import { cli } from './cli.ts';

let work: { path: string; cleanup: () => void };
let base: string[];

beforeAll(() => {
  work = tempDir();
  base = ['serve', '--keys', join(work.path, 'keys'), '--db', 'memory:', '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0'];
});
afterAll(() => work.cleanup());

async function refusedAtStartUp(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await cli([...base, ...args], env);
  expect(r.code).not.toBe(0);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  return r.stderr;
}

describe('serve refuses unsafe settings at start-up', () => {
  it('refuses --jwks-url over http, saying why', async () => {
    expect(await refusedAtStartUp(['--jwks-url', 'http://issuer.example/keys', '--issuer', 'https://issuer.example'])).toMatch(
      /--jwks-url http:\/\/issuer\.example: must be an https URL \(keys fetched over http can be swapped by anyone on the path/,
    );
    expect(await refusedAtStartUp(['--jwks-url', 'not a url', '--issuer', 'x'])).toMatch(/--jwks-url "not a url" is not a URL/);
  });

  it.each([
    [['--deny-namespaces', 'kube-system,Istio_System'], /--deny-namespaces: "Istio_System" is not a Kubernetes namespace name/],
    [['--allow-namespaces', 'shop', '--allow-namespaces', 'a..b'], /--allow-namespaces: "a\.\.b" is not a Kubernetes namespace name/],
    [['--deny-namespaces', 'kube-system,,istio-system'], /--deny-namespaces: empty element/],
  ])('refuses a namespace list %j that cannot mean what it says', async (args, message) => {
    expect(await refusedAtStartUp(args)).toMatch(message);
  });

  it.each(['a..b/sa', 'ns/a..b'])('refuses --trusted-node-accounts %s (the Kubernetes name rules the SPIFFE ID uses)', async (entry) => {
    const jwks = ['--authn', 'jwks', '--jwks-url', 'https://issuer.example/keys', '--issuer', 'https://issuer.example'];
    expect(await refusedAtStartUp([...jwks, '--trusted-node-accounts', `istio-system/ztunnel,${entry}`])).toMatch(
      new RegExp(`--trusted-node-accounts: "${entry.replace(/\./g, '\\.')}" is not <namespace>/<service account>`),
    );
  });

  it('refuses a bad namespace from the environment too', async () => {
    expect(await refusedAtStartUp([], { MESHCA_DENY_NAMESPACES: 'kube-system, ns/with/slash' })).toMatch(/MESHCA_DENY_NAMESPACES: "ns\/with\/slash" is not a Kubernetes namespace name/);
  });
});
