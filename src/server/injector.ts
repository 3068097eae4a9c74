// `serve --injector`: the agent-injection webhook on its own HTTPS port, presenting the CA's own
// serving certificate (it names meshca-injector.<namespace>.svc) and following its renewals
// without a restart. What it injects is src/inject's business; this only serves it.

import type { Server as HttpServer } from 'node:http';
import { Counter } from 'prom-client';
import { startInjectorCaBundle, type Leadership, type WebhookCaBundle } from '../distribution/index.ts';
import { createInjectorServer } from '../inject/index.ts';
import { closeHttp, listenHttp } from '../transport/index.ts';
import type { CaContext } from './context.ts';
import type { Feature } from './features.ts';
import type { ServingIdentity } from './serving_identity.ts';

export const CA_GRPC_PORT = 15012;

interface Held {
  readonly certificate: Buffer;
  readonly privateKey: Buffer;
}

export async function injectorFeature(ctx: CaContext, identity: ServingIdentity, leadership?: Leadership): Promise<Feature & { readonly address?: string }> {
  const { config, log } = ctx;
  if (!config.injector) return {};
  const reviews = new Counter({ name: 'meshca_injector_reviews_total', help: 'AdmissionReviews answered by outcome: injected, skipped (opted out, already injected, not a pod) or error', labelNames: ['outcome'], registers: [ctx.registry] });
  const current = await new Promise<Held>((resolve) => {
    const first = (c: Held | null) => {
      if (!c) return;
      identity.removeIdentityCertificateListener(first);
      resolve(c);
    };
    identity.addIdentityCertificateListener(first);
  });
  const server = createInjectorServer({
    inject: { image: config.injector.agentImage, caAddr: `meshca.${config.namespace}.svc:${CA_GRPC_PORT}`, audience: config.audiences[0]! },
    certPem: current.certificate.toString(),
    keyPem: current.privateKey.toString(),
    log,
    onReview: (outcome) => reviews.inc({ outcome }),
  });
  const follow = (c: Held | null) => {
    if (c) server.setSecureContext({ cert: c.certificate, key: c.privateKey, minVersion: 'TLSv1.2' });
  };
  identity.addIdentityCertificateListener(follow);
  const asHttp = server as unknown as HttpServer;
  const address = await listenHttp(asHttp, config.injector.listen, '--injector-listen').catch((err: unknown) => {
    identity.removeIdentityCertificateListener(follow);
    throw err;
  });
  log.info({ address }, 'agent injection webhook listening (POST /inject)');
  // The API server trusts the webhook through its caBundle: the leader keeps it on the trust bundle.
  let caBundle: WebhookCaBundle | undefined;
  if (leadership && config.leaderElection !== 'off') {
    try {
      caBundle = await startInjectorCaBundle(config.leaderElection, config.kubernetes.kubeconfigPath, {
        leadership, bundlePem: () => ctx.state.bundlePem.join(''), onBundleChange: (l) => ctx.state.subscribe(() => l()), clock: ctx.clock, log, registry: ctx.registry,
      });
    } catch (err) {
      identity.removeIdentityCertificateListener(follow);
      await closeHttp(asHttp);
      throw err;
    }
  }
  return {
    address,
    stop: async () => {
      caBundle?.stop();
      identity.removeIdentityCertificateListener(follow);
      await closeHttp(asHttp);
    },
  };
}
