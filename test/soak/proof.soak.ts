// THE PROOF (test/rotation/proof_scenario.ts) in real time: the one soak test, kept out of
// `npm test` (`npm run test:soak`; CI runs it after `npm test`). About 35 s.

import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'vitest';
import { systemClock } from '../../src/time/index.ts';
import { rotationProof } from '../rotation/proof_scenario.ts';

describe('root rotation under load (real time)', () => {
  it('rotates root and intermediate with zero failed handshakes, and ends with every leaf on the new root only', async () => {
    await rotationProof({ clock: systemClock, pass: async (ms) => void (await sleep(Math.max(0, ms))), loopsPerPair: 2 });
  }, 80_000);
});
