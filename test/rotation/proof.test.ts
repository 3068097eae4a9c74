// THE PROOF (test/rotation/proof_scenario.ts) on a fake clock: the CA, the agents and the rotation
// commands share one FakeClock that the test moves 200 ms at a time, with real time in between for
// gRPC and TLS, so the ~30 s of certificate lifetimes pass in a few seconds. Fake time runs ahead
// of real time by less than the 60 s the CA backdates certificates, so real TLS still accepts them.
// test/soak/proof.soak.ts runs the same proof in real time.

import { setTimeout as realDelay } from 'node:timers/promises';
import { describe, it } from 'vitest';
import { FakeClock } from '../fakes/clock.ts';
import { rotationProof } from './proof_scenario.ts';

const STEP_MS = 200;
const REAL_STEP_MS = 5;

describe('root rotation under load (fake clock)', () => {
  it('rotates root and intermediate with zero failed handshakes, and ends with every leaf on the new root only', async () => {
    // Starts at the real time: the agents' tokens are minted, and their TLS checked, in real time.
    const clock = new FakeClock(Date.now());
    const pass = async (ms: number) => {
      for (let left = ms; left > 0; left -= STEP_MS) {
        await clock.advance(Math.min(STEP_MS, left));
        await realDelay(REAL_STEP_MS);
      }
    };
    await rotationProof({ clock, pass, loopsPerPair: 1 });
  }, 60_000);
});
