// `meshca ca init`: make the CA's key store (a directory, or a Kubernetes Secret with --kubeconfig);
// with --force, replace all of it (rotation slots too).
import { DEFAULT_TRUST_DOMAIN, initCa } from '../../ca/index.ts';
import { isMeshcaError, MeshcaError } from '../../errors/index.ts';
import { openKeyStore } from '../../keystore/index.ts';
import { DirectoryKeyStore } from '../../rotation/index.ts';
import { existingRootPaths } from './existing_root.ts';
import { defineCommand, report } from '../command.ts';
import { openCustody } from '../custody.ts';

export const caInitCommand = defineCommand({
  path: ['ca', 'init'],
  usage: 'meshca ca init [--keys DIR|k8s-secret:NS/NAME [--kubeconfig F]] [--trust-domain TD] [--key-type ec-p256] [--external-root-cert F --external-root-key F] [--signer pkcs11:…] [--force]',
  options: {
    settings: ['keys', 'kubeconfig', 'trust-domain', 'org', 'key-type', 'root-ttl', 'ca-ttl', 'external-root-cert', 'external-root-key', 'signer', 'force', 'json'],
    defaults: { 'trust-domain': DEFAULT_TRUST_DOMAIN },
  },
  async run(v, ctx) {
    const existingRoot = existingRootPaths(v);
    const opened = await openKeyStore(v.keys, { ...(v.kubeconfig ? { kubeconfig: v.kubeconfig } : {}), clock: ctx.clock });
    const { custody, close } = await openCustody(v.signer, ctx).catch(async (err: unknown) => {
      await opened.close();
      throw err;
    });
    try {
      // With --force the whole key store is replaced, rotation slots included, under the rotation lock.
      const result = await new DirectoryKeyStore(opened.dir)
        .replaceCa((forgetSlots) =>
          initCa({
            custody,
            keysDir: opened.dir,
            trustDomain: v['trust-domain'],
            organization: v.org,
            keyType: v['key-type'],
            rootTtlMs: v['root-ttl'],
            caTtlMs: v['ca-ttl'],
            nowMs: ctx.clock.now(),
            force: v.force,
            ...(existingRoot ? { existingRoot } : {}),
            replacing: forgetSlots,
          }),
        )
        .catch((err: unknown) => {
          // The working copy's path means nothing to the operator; the Secret does.
          if (opened.remote && isMeshcaError(err, 'KEYS_EXIST')) throw new MeshcaError('KEYS_EXIST', `the key store ${opened.location} already holds a CA; pass --force to replace it (the old keys are lost)`, { cause: err });
          throw err;
        });
      // A Secret is written conditionally on the version read: a CA someone made meanwhile is never overwritten.
      if (!(await opened.publish())) {
        throw new MeshcaError('KEYS_EXIST', `the key store ${opened.location} was written by someone else while this ran; nothing was changed (see "meshca root status --keys ${opened.location}")`);
      }
      const where = opened.remote ? opened.location : `${result.keysDir}/`;
      const what = result.madeRoot ? 'root and intermediate CA' : 'intermediate CA under your root';
      report(
        ctx,
        v,
        `made a ${what} for spiffe://${v['trust-domain']} in ${where} (root ${result.rootKeyId.slice(0, 16)}… until ${result.rootNotAfter}, ` +
          `intermediate ${result.caKeyId.slice(0, 16)}… until ${result.caNotAfter}); ` +
          (v.signer ? `the intermediate's key was made in ${custody.name} and cannot leave it; ` : '') +
          `private keys are ${opened.remote ? 'in the Secret only' : 'mode 0600'}`,
        opened.remote ? { ...result, keysDir: opened.location } : result,
      );
      return 0;
    } finally {
      close();
      await opened.close();
    }
  },
});
