// THE PROOF, shared by test/rotation/proof.test.ts (fake clock) and test/soak/proof.soak.ts (real
// time): a CA, 20 agents with 10-second certificates and 10 pairs of TLS clients and servers using
// the agents' SDS secrets, handshaking without pause while the root is prepared, activated, the
// intermediate rotated and the old root retired — with zero failed handshakes, the early
// activate/retire refused, and at the end every leaf chaining only to the new root.

import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { isMeshcaError } from '../../src/errors/index.ts';
import { memoryLedger } from '../../src/ledger/index.ts';
import { activateRoot, DirectoryKeyStore, prepareRoot, retireRoot, rotateIntermediate, rotationPolicy, type RotationContext } from '../../src/rotation/index.ts';
import type { Clock } from '../../src/time/index.ts';
import { opensslVerify, pemBlocks } from '../helpers/csr.ts';
import { startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';
import { startHandshakes, startMeshAgent, type MeshAgent } from './mesh.ts';

const AGENTS = 20;
const TTL_MS = 10_000;
const RELOAD_MS = 1_000;

export interface ProofTime {
  /** Shared by the CA, the agents and the rotation commands. */
  readonly clock: Clock;
  /** Lets `ms` of the clock's time pass (a real sleep, or fake steps with real I/O between). */
  pass(ms: number): Promise<void>;
  /** Concurrent handshake loops per client/server pair. */
  readonly loopsPerPair: number;
}

function opensslVerifies(chainPem: string, rootPem: string): boolean {
  const [leaf, ...intermediates] = pemBlocks(chainPem);
  try {
    opensslVerify(rootPem, intermediates.join(''), leaf!);
    return true;
  } catch {
    return false;
  }
}

async function refusal(step: Promise<unknown>): Promise<string> {
  try {
    await step;
  } catch (err) {
    if (isMeshcaError(err, 'ROTATION_REFUSED')) return err.message;
    throw err;
  }
  throw new Error('the step was not refused');
}

/** Runs the proof and checks it; cleans up whatever it started. */
export async function rotationProof({ clock, pass, loopsPerPair }: ProofTime): Promise<void> {
  const dir = tempDir('meshca-proof-');
  let ca: TestCa | undefined;
  const agents: MeshAgent[] = [];
  try {
    const keysDir = join(dir.path, 'keys');
    ca = await startTestCa(['--max-ttl', '10s', '--default-ttl', '10s', '--keys-poll', '200ms'], { keysDir, clock });
    const oldRootPem = readFileSync(join(keysDir, 'root-cert.pem'), 'utf8');
    // Agents dial the CA trusting the root they were deployed with, as from a mounted ConfigMap.
    const rootFile = join(dir.path, 'deployed-root.pem');
    copyFileSync(join(keysDir, 'root-cert.pem'), rootFile);
    for (let i = 0; i < AGENTS; i++) {
      agents.push(await startMeshAgent({ index: i, dir: dir.path, keysDir, caAddress: ca.server.grpcAddress, rootCertPath: rootFile, ttlMs: TTL_MS, clock }));
    }
    await Promise.all(agents.map((a) => a.ready));
    const mesh = await startHandshakes(agents, loopsPerPair);
    const rotation: RotationContext = {
      store: new DirectoryKeyStore(keysDir),
      clock,
      policy: rotationPolicy(TTL_MS, RELOAD_MS),
      ledger: memoryLedger(),
      actor: 'cli:proof-test',
      organization: 'meshca test',
      rootTtlMs: 86_400_000,
      caTtlMs: 3_600_000,
      trustDomain: 'cluster.local',
    };
    try {
      await pass(1500);
      const prepared = await prepareRoot(rotation, { keyType: 'ec-p256' });
      expect(prepared.outcome).toBe('prepared');
      expect(await refusal(activateRoot(rotation, { force: false }))).toMatch(/^refused: the new bundle has been out only .*\(the longest leaf lifetime is 10s, and every serve takes up to /);

      await pass(Date.parse(prepared.activationAllowedAt) - clock.now() + 100);
      const activated = await activateRoot(rotation, { force: false });
      expect(activated).toMatchObject({ outcome: 'activated', rootKeyId: prepared.rootKeyId });
      expect(await refusal(retireRoot(rotation, { force: false }))).toMatch(/^refused: certificates from the old chain .* can be valid until/);
      const activatedAt = clock.now();

      await pass(3000);
      const intermediate = await rotateIntermediate(rotation, { keyType: 'ec-p256', now: true });
      expect(intermediate.step).toBe('activate');

      await pass(activatedAt + RELOAD_MS + TTL_MS - clock.now() + 300);
      expect((await retireRoot(rotation, { force: false })).outcome).toBe('retired');
      // Every agent renews (at half of 10 s) and so picks up the one-root bundle.
      await pass(TTL_MS * 0.6 + 1000);
    } finally {
      await mesh.stop();
    }

    expect(mesh.stats.failures).toEqual([]);
    expect(mesh.stats.failed).toBe(0);
    expect(mesh.stats.ok).toBeGreaterThan(500);

    const newRootPem = readFileSync(join(keysDir, 'root-cert.pem'), 'utf8');
    expect(pemBlocks(newRootPem)).toHaveLength(1);
    expect(new X509Certificate(newRootPem).fingerprint256).not.toBe(new X509Certificate(oldRootPem).fingerprint256);
    const newIntermediate = new X509Certificate(readFileSync(join(keysDir, 'ca-cert.pem')));
    for (const a of agents) {
      const s = a.secrets!;
      expect(pemBlocks(s.bundlePem).map((p) => new X509Certificate(p).fingerprint256)).toEqual([new X509Certificate(newRootPem).fingerprint256]);
      expect(new X509Certificate(pemBlocks(s.chainPem)[0]!).checkIssued(newIntermediate)).toBe(true);
      expect(opensslVerifies(s.chainPem, newRootPem)).toBe(true);
      expect(opensslVerifies(s.chainPem, oldRootPem)).toBe(false);
    }
  } finally {
    await Promise.all(agents.map((a) => a.close()));
    await ca?.stop();
    dir.cleanup();
  }
}
