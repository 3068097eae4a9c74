// `meshca sign`: issue an X509-SVID from the key directory for a CSR file (operators and tests).
import { readSettingFile } from '../../config/index.ts';
import { bindTrustDomain, DEFAULT_LEAF_TTL_MS, loadAuthorityFromDirectory, SvidIssuer, validateTtlPolicy } from '../../ca/index.ts';
import { MeshcaError } from '../../errors/index.ts';
import { ledgerUrlFor, openLedgerWriter } from '../../ledger/index.ts';
import { kubernetesIdentityOf, parseSpiffeId } from '../../spiffe/index.ts';
import { formatDuration } from '../../time/index.ts';
import type { Settings } from '../../config/index.ts';
import type { SigningAuthority } from '../../pki/index.ts';
import type { SpiffeId } from '../../spiffe/index.ts';
import { defineCommand, type CommandContext } from '../command.ts';
import { openCustody } from '../custody.ts';

const SIGN_OPTIONS = { settings: ['csr', 'id', 'ttl', 'max-ttl', 'keys', 'trust-domain', 'db', 'new-ledger', 'signer', 'json'], required: ['csr', 'id'] } as const;
type SignSettings = Settings<typeof SIGN_OPTIONS>;

export const signCommand = defineCommand({
  path: ['sign'],
  usage: 'meshca sign --csr FILE --id SPIFFE_ID [--ttl 1h] [--keys DIR] [--signer pkcs11:…] [--json]',
  options: SIGN_OPTIONS,
  async run(v, ctx) {
    const spiffeId = parseSpiffeId(v.id);
    const csrPem = readSettingFile(v.csr, '--csr');
    if (v.ttl % 1000 !== 0) throw new MeshcaError('BAD_TTL', `--ttl ${formatDuration(v.ttl)} must be whole seconds`);
    const { custody, close } = await openCustody(v.signer, ctx);
    try {
      return await signWith(loadAuthorityFromDirectory(v.keys, ctx.clock.now(), custody), spiffeId, csrPem, v, ctx);
    } finally {
      close();
    }
  },
});

async function signWith(authority: SigningAuthority, spiffeId: SpiffeId, csrPem: string, v: SignSettings, ctx: CommandContext): Promise<number> {
  const trustDomain = bindTrustDomain(authority, v['trust-domain'], v.keys);
  if (spiffeId.trustDomain !== trustDomain) {
    throw new MeshcaError('BAD_SPIFFE_ID', `--id ${spiffeId.uri} is not in trust domain ${trustDomain}, the one the CA in ${v.keys} signs for`);
  }
  const ledger = await openLedgerWriter(ledgerUrlFor(v.db, v.keys), { keysDir: v.keys, rootKeyId: authority.rootKeyId, newLedger: v['new-ledger'], clock: ctx.clock });
  try {
    const issuer = new SvidIssuer({
      authority: () => authority,
      ledger,
      clock: ctx.clock,
      ttl: validateTtlPolicy({ defaultTtlMs: Math.min(DEFAULT_LEAF_TTL_MS, v['max-ttl']), maxTtlMs: v['max-ttl'] }),
    });
    const k8s = kubernetesIdentityOf(spiffeId);
    const svid = await issuer.issueWorkloadSvid({
      caller: {
        spiffeId,
        authenticator: 'operator',
        ...(k8s ? { namespace: k8s.namespace, serviceAccount: k8s.serviceAccount } : {}),
      },
      csrPem,
      requestedTtlSeconds: v.ttl / 1000,
      channel: 'sign-cli',
    });
    if (v.json) {
      ctx.stdout(
        `${JSON.stringify(
          {
            spiffeId: svid.spiffeId,
            serial: svid.certificate.serialHex,
            notBefore: new Date(svid.certificate.notBeforeMs).toISOString(),
            notAfter: new Date(svid.certificate.notAfterMs).toISOString(),
            issuerKeyId: svid.issuerKeyId,
            rootKeyId: svid.rootKeyId,
            chain: svid.chainPem,
          },
          null,
          2,
        )}\n`,
      );
    } else {
      ctx.stdout(svid.chainPem.join(''));
      ctx.stderr(`issued ${svid.spiffeId} serial ${svid.certificate.serialHex} until ${new Date(svid.certificate.notAfterMs).toISOString()}\n`);
    }
    return 0;
  } finally {
    await ledger.close();
  }
}
