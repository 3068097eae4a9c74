// `meshca ca csr` and `meshca ca install`: a CA under a root kept offline. csr makes the
// intermediate's key (in memory, or in the token --signer names) and prints its CSR; the root's
// holder signs it with any tool; install checks the result and writes the CA. See docs/rotation.md.

import { DEFAULT_TRUST_DOMAIN, installIntermediate, makeIntermediateRequest } from '../../ca/index.ts';
import { readSettingFile } from '../../config/index.ts';
import { MeshcaError } from '../../errors/index.ts';
import { openKeyStore } from '../../keystore/index.ts';
import { defineCommand, report } from '../command.ts';
import { openCustody } from '../custody.ts';

export const caCsrCommand = defineCommand({
  path: ['ca', 'csr'],
  usage: 'meshca ca csr [--keys DIR] [--trust-domain cluster.local] [--key-type ec-p256] [--org NAME] [--signer pkcs11:…] > intermediate.csr',
  options: { settings: ['keys', 'kubeconfig', 'trust-domain', 'key-type', 'org', 'signer', 'json'], defaults: { 'trust-domain': DEFAULT_TRUST_DOMAIN } },
  async run(v, ctx) {
    const opened = await openKeyStore(v.keys, { ...(v.kubeconfig ? { kubeconfig: v.kubeconfig } : {}), clock: ctx.clock });
    const { custody, close } = await openCustody(v.signer, ctx).catch(async (err: unknown) => {
      await opened.close();
      throw err;
    });
    try {
      const made = await makeIntermediateRequest({ keysDir: opened.dir, custody, keyType: v['key-type'], trustDomain: v['trust-domain'], organization: v.org, nowMs: ctx.clock.now() });
      if (!(await opened.publish())) throw new MeshcaError('KEYS_EXIST', `the key store ${opened.location} was written by someone else while this ran; run "meshca ca csr" again`);
      if (v.json) ctx.stdout(`${JSON.stringify({ csr: made.csrPem, keyIn: custody.name }, null, 2)}\n`);
      else {
        ctx.stdout(made.csrPem);
        ctx.stderr(`made the intermediate's key (${custody.name === 'memory' ? `kept in ${opened.location}/pending until "meshca ca install"` : `in ${custody.name}`}); have the CSR above signed by the root, then run "meshca ca install --cert intermediate.pem --chain chain.pem"\n`);
      }
      return 0;
    } finally {
      close();
      await opened.close();
    }
  },
});

export const caInstallCommand = defineCommand({
  path: ['ca', 'install'],
  usage: 'meshca ca install --cert intermediate.pem --chain chain.pem [--keys DIR] [--max-ttl 24h] [--signer pkcs11:…]',
  options: { settings: ['keys', 'kubeconfig', 'cert', 'chain', 'max-ttl', 'signer', 'json'], required: ['cert', 'chain'] },
  async run(v, ctx) {
    const certPem = readSettingFile(v.cert, '--cert');
    const chainPem = readSettingFile(v.chain, '--chain');
    const opened = await openKeyStore(v.keys, { ...(v.kubeconfig ? { kubeconfig: v.kubeconfig } : {}), clock: ctx.clock });
    const { custody, close } = await openCustody(v.signer, ctx).catch(async (err: unknown) => {
      await opened.close();
      throw err;
    });
    try {
      const r = installIntermediate({
        keysDir: opened.dir, custody, certPem, certSource: `--cert ${v.cert}`, chainPem, chainSource: `--chain ${v.chain}`, maxLeafTtlMs: v['max-ttl'], nowMs: ctx.clock.now(),
      });
      if (!(await opened.publish())) throw new MeshcaError('KEYS_EXIST', `the key store ${opened.location} was written by someone else while this ran; nothing was installed`);
      report(
        ctx,
        v,
        `installed intermediate ${r.caKeyId.slice(0, 16)}… (until ${r.caNotAfter}) under the offline root ${r.rootKeyId.slice(0, 16)}… (until ${r.rootNotAfter}) in ${opened.location}; ` +
          'the root key is not here, so rotate intermediates with "meshca ca csr" / "meshca ca install" before the intermediate expires',
        r,
      );
      return 0;
    } finally {
      close();
      await opened.close();
    }
  },
});
