// Kubernetes authentication cost: TokenReview calls a restart storm makes (cache + coalescing +
// client-side rate limit) and authentications/s with a warm cache beside plain JWT verification.
// Runs against the fake API server over real HTTPS; writes the `tokenreview` section.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { JWT_ALGORITHMS } from '../src/authn/jwt.ts';
import { systemClock } from '../src/time/index.ts';
import { createKubernetesAuthenticators, type KubernetesAuthOptions } from '../src/authn/kubernetes/index.ts';
import { callerFromKubernetesClaims } from '../src/authn/kubernetes_claims.ts';
import { tokenFacts } from '../src/authn/token.ts';
import { createLogger, Registry } from '../src/observability/index.ts';
import { FakeKubeApiServer } from '../test/fakes/kube_api_server.ts';
import { fmt, measureRate, writeSection } from './report.ts';

const DURATION_MS = Number(process.env.BENCH_SECONDS ?? 3) * 1000;
const STORM_AUTHS = 1_000;
const STORM_PODS = [10, 100, 1_000];
const STORM_DEADLINE_MS = 5_000;
const API_LATENCY_MS = 5;

const rate = (fn: () => Promise<unknown>) => measureRate(fn, DURATION_MS, 500);

export async function run(): Promise<void> {
  const fake = await FakeKubeApiServer.start();
  fake.latencyMs = API_LATENCY_MS;
  const dir = mkdtempSync(join(tmpdir(), 'meshca-bench-kube-'));
  const base: KubernetesAuthOptions = {
    mode: 'tokenreview',
    audiences: ['meshca'],
    trustDomain: 'cluster.local',
    kubeconfigPath: fake.writeKubeconfig(dir),
    allowLegacyTokens: false,
    tokenCacheTtlMs: 5 * 60_000,
    tokenCacheSize: 100_000,
    kubeQps: 50,
    kubeBurst: 100,
    clock: systemClock,
    log: createLogger('silent'),
    registry: new Registry(),
  };
  try {
    const rows: string[] = [];
    for (const pods of STORM_PODS) {
      const [authn] = createKubernetesAuthenticators({ ...base, registry: new Registry() });
      const tokens = await Promise.all(Array.from({ length: pods }, (_, i) => fake.tokens.mint({ namespace: 'storm', serviceAccount: 'app', podName: `app-${pods}-${i}` })));
      fake.resetCalls();
      const started = performance.now();
      const deadlineMs = Date.now() + STORM_DEADLINE_MS;
      const outcomes = await Promise.all(Array.from({ length: STORM_AUTHS }, (_, i) => authn!.authenticate({ bearerToken: tokens[i % pods]!, deadlineMs })));
      const wallMs = performance.now() - started;
      const calls = fake.tokenReviewCount();
      const ok = outcomes.filter((o) => o.ok).length;
      const peak = Math.max(0, ...fake.callsPerSecond('tokenreviews'));
      rows.push(`| ${fmt(pods)} | ${fmt(STORM_AUTHS)} | ${fmt(calls)} | ${fmt((calls / STORM_AUTHS) * 1000)} | ${fmt(peak)} | ${fmt(ok)} | ${fmt(STORM_AUTHS - ok)} | ${fmt(wallMs)} ms |`);
    }

    // Warm cache vs the JWT-only path (jose verifying the same token against a local JWKS).
    const [authn] = createKubernetesAuthenticators({ ...base, registry: new Registry() });
    const token = await fake.tokens.mint({ namespace: 'bench', serviceAccount: 'web', podName: 'web-0' });
    const warm = await authn!.authenticate({ bearerToken: token });
    if (!warm.ok) throw new Error(`bench token refused: ${warm.reason}`);
    const cached = await rate(() => authn!.authenticate({ bearerToken: token }));
    const keys = createLocalJWKSet(fake.tokens.jwks());
    const jwtOnly = await rate(async () => {
      const { payload } = await jwtVerify(token, keys, { issuer: fake.url, audience: 'meshca', algorithms: JWT_ALGORITHMS, requiredClaims: ['exp', 'sub'] });
      return callerFromKubernetesClaims(payload, { trustDomain: 'cluster.local', authenticator: 'jwt', token: tokenFacts(token), nowMs: Date.now() });
    });
    const [jwks] = createKubernetesAuthenticators({ ...base, mode: 'jwks', registry: new Registry() });
    const jwksRate = await rate(() => jwks!.authenticate({ bearerToken: token }));
    const costPct = ((jwtOnly - cached) / jwtOnly) * 100;

    writeSection(
      'tokenreview',
      [
        '## Kubernetes token authentication',
        '',
        `Restart storm: ${fmt(STORM_AUTHS)} concurrent authentications spread over N pods (each pod's token presented ${'1,000/N'} times), ` +
          `defaults --kube-qps 50 --kube-burst 100, request deadline ${STORM_DEADLINE_MS / 1000} s, fake API server adding ${API_LATENCY_MS} ms per call. ` +
          'Without the cache and coalescing every authentication would be one TokenReview (1,000 per 1,000).',
        '',
        '| pods (N) | authentications | TokenReview calls | calls per 1,000 authentications | peak calls/s at the API | succeeded | UNAVAILABLE (retry hint) | wall time |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|',
        ...rows,
        '',
        'Peak calls/s counts arrivals at the API server per wall-clock second. The client-side limiter bounds when calls ' +
          'start (at most burst + qps·t by time t); each call opens its own TLS connection, so some of the burst arrive late ' +
          'and can land in the same second as later calls.',
        '',
        'One already-reviewed token, authenticated in a loop on one core:',
        '',
        '| path | authentications/s |',
        '|---|---:|',
        `| TokenReview authenticator, warm cache (SHA-256 + LRU lookup) | ${fmt(cached)} |`,
        `| JWT only: jose \`jwtVerify\` against a local JWKS + claim mapping | ${fmt(jwtOnly)} |`,
        `| \`--authn jwks\` authenticator (remote JWKS already fetched) | ${fmt(jwksRate)} |`,
        '',
        `Cost of the cached TokenReview path relative to JWT-only verification: ${costPct <= 0 ? `none (it is ${fmt(cached / jwtOnly, 1)}× as fast)` : `${fmt(costPct, 1)}%`} (budget: under 10%).`,
      ].join('\n'),
    );
    if (costPct >= 10) throw new Error(`warm-cache authentication costs ${fmt(costPct, 1)}% more than JWT-only verification (budget 10%)`);
  } finally {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
