// `meshca ca init`: make the CA's key directory; with --force, replace all of it (rotation slots too).
import { DEFAULT_TRUST_DOMAIN, initCa } from '../../ca/index.ts';
import { DirectoryKeyStore } from '../../rotation/index.ts';
import { existingRootPaths } from './existing_root.ts';
import { defineCommand, report } from '../command.ts';

export const caInitCommand = defineCommand({
  path: ['ca', 'init'],
  usage: 'meshca ca init [--keys DIR] [--trust-domain TD] [--key-type ec-p256] [--external-root-cert F --external-root-key F] [--force]',
  options: { settings: ['keys', 'trust-domain', 'org', 'key-type', 'root-ttl', 'ca-ttl', 'external-root-cert', 'external-root-key', 'force', 'json'], defaults: { 'trust-domain': DEFAULT_TRUST_DOMAIN } },
  async run(v, ctx) {
    const existingRoot = existingRootPaths(v);
    // With --force the whole key store is replaced, rotation slots included, under the rotation lock.
    const result = await new DirectoryKeyStore(v.keys).replaceCa((forgetSlots) => initCa({
      keysDir: v.keys,
      trustDomain: v['trust-domain'],
      organization: v.org,
      keyType: v['key-type'],
      rootTtlMs: v['root-ttl'],
      caTtlMs: v['ca-ttl'],
      nowMs: ctx.clock.now(),
      force: v.force,
      ...(existingRoot ? { existingRoot } : {}),
      replacing: forgetSlots,
    }));
    const what = result.madeRoot ? 'root and intermediate CA' : 'intermediate CA under your root';
    report(
      ctx,
      v,
      `made a ${what} for spiffe://${v['trust-domain']} in ${result.keysDir}/ (root ${result.rootKeyId.slice(0, 16)}… until ${result.rootNotAfter}, ` +
        `intermediate ${result.caKeyId.slice(0, 16)}… until ${result.caNotAfter}); private keys are mode 0600`,
      result,
    );
    return 0;
  },
});
