// A signing authority is only ever built verified: key matches certificate, chain links to a
// root, everything valid now. Both key-directory layouts load.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initCa, loadAuthorityFromDirectory } from '../../src/ca/index.ts';
import { createLocalSigner, generateKeyPair, issueSvid, keyAlgorithmOf, loadSigningAuthority, writePrivateKeyFile } from '../../src/pki/index.ts';
import { tempDir } from '../helpers/serve.ts';
import { makeTestAuthority } from '../helpers/test_ca.ts';

const work = tempDir();
afterAll(() => work.cleanup());

describe('loadSigningAuthority', () => {
  it('refuses a CA key that does not match the CA certificate', async () => {
    const ca = await makeTestAuthority();
    expect(() =>
      loadSigningAuthority({ chainPem: ca.intermediatePem, rootsPem: ca.rootPem, signer: createLocalSigner(generateKeyPair().privateKey), nowMs: Date.now() }),
    ).toThrow(/the CA private key does not match the CA certificate/);
  });

  it('refuses an intermediate that does not chain to the given roots', async () => {
    const ca = await makeTestAuthority();
    const other = await makeTestAuthority();
    expect(() => loadSigningAuthority({ chainPem: ca.intermediatePem, rootsPem: other.rootPem, signer: ca.authority.template.signer, nowMs: Date.now() })).toThrow(
      /does not chain to any trusted root/,
    );
  });

  it('refuses an expired intermediate, naming its validity', async () => {
    const now = Date.now();
    const ca = await makeTestAuthority({ caTtlMs: 3600_000, nowMs: now });
    expect(() => loadSigningAuthority({ chainPem: ca.intermediatePem, rootsPem: ca.rootPem, signer: ca.authority.template.signer, nowMs: now + 2 * 3600_000 })).toThrow(
      /is not valid now \(valid .* to .*\)/,
    );
  });

  it('refuses a leaf posing as the CA certificate', async () => {
    const ca = await makeTestAuthority();
    const { privateKey, publicKey } = generateKeyPair();
    const leaf = await issueSvid(ca.authority, 'spiffe://cluster.local/ns/a/sa/b', {
      spkiDer: publicKey.export({ format: 'der', type: 'spki' }),
      keyAlgorithm: keyAlgorithmOf(publicKey),
      ttlMs: 3600_000,
      nowMs: Date.now(),
    });
    expect(() => loadSigningAuthority({ chainPem: leaf.pem + ca.intermediatePem, rootsPem: ca.rootPem, signer: createLocalSigner(privateKey), nowMs: Date.now() })).toThrow(
      /the CA certificate is not a CA/,
    );
  });
});

describe('the key directory', () => {
  it('loads the cacerts layout that ca init writes, reporting key ids', async () => {
    const dir = join(work.path, 'cacerts');
    const made = await initCa({ keysDir: dir, trustDomain: 'cluster.local', organization: 'o', keyType: 'ec-p256', rootTtlMs: 86400_000 * 30, caTtlMs: 86400_000, nowMs: Date.now(), force: false });
    const authority = loadAuthorityFromDirectory(dir, Date.now());
    expect(authority.keyId).toBe(made.caKeyId);
    expect(authority.rootKeyId).toBe(made.rootKeyId);
    expect(authority.chainPem).toHaveLength(1);
  });

  it('loads the kubernetes.io/tls layout', async () => {
    const ca = await makeTestAuthority();
    const dir = join(work.path, 'tls');
    mkdirSync(dir);
    writeFileSync(join(dir, 'tls.crt'), ca.intermediatePem);
    writeFileSync(join(dir, 'ca.crt'), ca.rootPem);
    const cacerts = join(work.path, 'cacerts');
    writeFileSync(join(dir, 'tls.key'), readFileSync(join(cacerts, 'ca-key.pem')), { mode: 0o600 });
    // The key above belongs to another CA: the mismatch is caught…
    expect(() => loadAuthorityFromDirectory(dir, Date.now())).toThrow(/does not match/);
    // …and with the right key the directory loads.
    const own = join(work.path, 'own');
    await initCa({ keysDir: own, trustDomain: 'cluster.local', organization: 'o', keyType: 'ec-p256', rootTtlMs: 86400_000 * 30, caTtlMs: 86400_000, nowMs: Date.now(), force: false });
    writeFileSync(join(dir, 'tls.crt'), readFileSync(join(own, 'cert-chain.pem')));
    writeFileSync(join(dir, 'ca.crt'), readFileSync(join(own, 'root-cert.pem')));
    writePrivateKeyFile(join(dir, 'tls.key'), (await import('node:crypto')).createPrivateKey(readFileSync(join(own, 'ca-key.pem'))));
    expect(loadAuthorityFromDirectory(dir, Date.now()).rootKeyId).toBe(loadAuthorityFromDirectory(own, Date.now()).rootKeyId);
  });

  it('says what is missing from an incomplete directory', () => {
    const dir = join(work.path, 'partial');
    mkdirSync(dir);
    writeFileSync(join(dir, 'ca-cert.pem'), 'x');
    expect(() => loadAuthorityFromDirectory(dir, Date.now())).toThrow(/incomplete \(found ca-cert.pem\); it needs root-cert.pem/);
    expect(() => loadAuthorityFromDirectory(join(work.path, 'empty-nothing'), Date.now())).toThrow(/holds no CA; run "meshca ca init/);
  });
});
