// Keeps the injection webhook's caBundle equal to the trust bundle: the API server verifies
// meshca's webhook serving certificate against it, so after a root rotation it must follow. Only
// the leader writes, and only the one MutatingWebhookConfiguration it is given; each write is
// conditional on the resourceVersion read (a 409 is re-read and retried, never overwritten).

import { encodePath, KubeClient, kubeStatusOf, type KubeConfig, type MutatingWebhookConfiguration as V1MutatingWebhookConfiguration } from '../kube/index.ts';
import { Counter, type Registry } from 'prom-client';
import { describeError } from '../errors/index.ts';
import type { Logger } from '../observability/index.ts';
import { MINUTE_MS, type Clock } from '../time/index.ts';
import type { Leadership } from './leader.ts';

export const INJECTOR_WEBHOOK_CONFIGURATION = 'meshca-injector';
const RESYNC_MS = MINUTE_MS;
const CONFLICT_RETRIES = 3;

export interface WebhookCaBundleOptions {
  readonly kubeConfig: KubeConfig;
  readonly leadership: Leadership;
  readonly bundlePem: () => string;
  readonly onBundleChange: (listener: () => void) => () => void;
  readonly clock: Clock;
  readonly log: Logger;
  readonly registry?: Registry;
  readonly name?: string;
}

export interface WebhookCaBundle {
  /** Makes the caBundle match now (leader only); resolves when done. */
  sync(): Promise<void>;
  stop(): void;
}

export function startWebhookCaBundle(o: WebhookCaBundleOptions): WebhookCaBundle {
  const api = new KubeClient(o.kubeConfig, { clock: o.clock });
  const name = o.name ?? INJECTOR_WEBHOOK_CONFIGURATION;
  const path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${encodePath(name)}`;
  const writes = new Counter({ name: 'meshca_webhook_cabundle_writes_total', help: `writes of the ${name} webhook caBundle by result (ok | conflict | error)`, labelNames: ['result'], registers: o.registry ? [o.registry] : [] });
  let missingLogged = false;
  let running: Promise<void> | undefined;
  let again = false;

  const attempt = async (): Promise<void> => {
    const want = Buffer.from(o.bundlePem()).toString('base64');
    for (let i = 0; i < CONFLICT_RETRIES && o.leadership.isLeader; i++) {
      let current: V1MutatingWebhookConfiguration;
      try {
        current = await api.get<V1MutatingWebhookConfiguration>(path);
      } catch (err) {
        if (kubeStatusOf(err) === 404) {
          if (!missingLogged) o.log.warn({ name }, `the MutatingWebhookConfiguration ${name} does not exist; apply deploy/ to inject agents`);
          missingLogged = true;
          return;
        }
        throw err;
      }
      missingLogged = false;
      const webhooks = current.webhooks ?? [];
      if (webhooks.every((w) => w.clientConfig.caBundle === want)) return;
      for (const w of webhooks) w.clientConfig.caBundle = want;
      try {
        await api.replace(path, current);
        writes.inc({ result: 'ok' });
        o.log.info({ name, webhooks: webhooks.length }, 'updated the injection webhook caBundle to the trust bundle');
        return;
      } catch (err) {
        if (kubeStatusOf(err) !== 409) throw err;
        writes.inc({ result: 'conflict' });
      }
    }
  };

  // Single-flight: a change arriving during a sync runs one more sync after it.
  const sync = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await attempt();
        } catch (err) {
          writes.inc({ result: 'error' });
          o.log.warn({ name, reason: describeError(err) }, 'could not update the injection webhook caBundle');
        }
      } while (again);
    })().finally(() => (running = undefined));
    return running;
  };

  const unsubscribeBundle = o.onBundleChange(() => void sync());
  const unsubscribeLeader = o.leadership.subscribe((leading) => {
    if (leading) void sync();
  });
  const timer = o.clock.every(RESYNC_MS, () => void sync());
  void sync();
  return {
    sync,
    stop() {
      timer.cancel();
      unsubscribeBundle();
      unsubscribeLeader();
      void api.close();
    },
  };
}
