// Waiting in the Istio tests for what the CA learns from a watch (it has no GET to look with):
// retry while the answer is UNAVAILABLE (the pod cache is still syncing), or poll a condition.
// Bounded by a deadline; test use only.

import { status } from '@grpc/grpc-js';

const GIVE_UP_AFTER_MS = 10_000;
const POLL_MS = 20;

export async function retryWhileUnavailable<T>(fn: () => Promise<T>): Promise<T> {
  const giveUpAt = Date.now() + GIVE_UP_AFTER_MS;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if ((err as { code?: number }).code !== status.UNAVAILABLE || Date.now() > giveUpAt) throw err;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

export async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const giveUpAt = Date.now() + GIVE_UP_AFTER_MS;
  while (!(await check())) {
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
