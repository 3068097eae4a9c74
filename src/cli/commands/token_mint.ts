// `meshca token mint`: a Kubernetes-shaped service-account token from the development issuer.
import { loadDevIssuer } from '../../authn/index.ts';
import { bindTrustDomain, loadAuthorityFromDirectory } from '../../ca/index.ts';
import { kubernetesSpiffeId } from '../../spiffe/index.ts';
import { MINUTE_MS } from '../../time/index.ts';
import { defineCommand } from '../command.ts';

/** Development tokens are short-lived, as projected service-account tokens are. */
const TOKEN_TTL_MS = 10 * MINUTE_MS;

export const tokenMintCommand = defineCommand({
  path: ['token', 'mint'],
  usage: 'meshca token mint --ns NAMESPACE --sa SERVICE_ACCOUNT [--pod NAME] [--token-ttl 10m] [--audience meshca[,istio-ca]] [--keys DIR]',
  options: { settings: ['ns', 'sa', 'pod', 'token-ttl', 'audience', 'keys', 'trust-domain', 'json'], required: ['ns', 'sa'], defaults: { 'token-ttl': TOKEN_TTL_MS } },
  async run(v, ctx) {
    // Validate the names the way the CA will: they must make a SPIFFE ID.
    const trustDomain = bindTrustDomain(loadAuthorityFromDirectory(v.keys, ctx.clock.now()), v['trust-domain'], v.keys);
    const id = kubernetesSpiffeId(trustDomain, v.ns, v.sa);
    const issuer = await loadDevIssuer(v.keys, true);
    const token = await issuer.mint({
      namespace: v.ns,
      serviceAccount: v.sa,
      ...(v.pod ? { podName: v.pod } : {}),
      audience: v.audience,
      ttlMs: v['token-ttl'],
      nowMs: ctx.clock.now(),
    });
    if (v.json) ctx.stdout(`${JSON.stringify({ token, spiffeId: id.uri, expiresAt: new Date(ctx.clock.now() + v['token-ttl']).toISOString() })}\n`);
    else ctx.stdout(`${token}\n`);
    return 0;
  },
});
