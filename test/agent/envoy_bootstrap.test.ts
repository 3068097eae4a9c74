// The Envoy example in deploy/envoy/ must keep agreeing with the agent: its socket, the secret
// names it serves, and a SPIFFE ID check on every peer.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SETTINGS } from '../../src/config/index.ts';

type Node = Record<string, unknown>;
const bootstrap = parse(readFileSync(new URL('../../deploy/envoy/envoy.yaml', import.meta.url), 'utf8')) as Node;

function collect(node: unknown, key: string, out: unknown[] = []): unknown[] {
  if (Array.isArray(node)) for (const x of node) collect(x, key, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === key) out.push(v);
      collect(v, key, out);
    }
  }
  return out;
}

describe('deploy/envoy/envoy.yaml', () => {
  it("points its SDS cluster at the agent's default socket", () => {
    const clusters = (bootstrap.static_resources as Node).clusters as Node[];
    const sds = clusters.find((c) => c.name === 'sds-grpc')!;
    expect(collect(sds, 'pipe')).toEqual([{ path: SETTINGS['sds-socket'].default }]);
    expect(collect(sds, 'http2_protocol_options')).toHaveLength(1);
  });

  it('takes its certificate from default and its trust from ROOTCA over SDS, and checks the peer SPIFFE ID', () => {
    const contexts = collect(bootstrap, 'common_tls_context') as Node[];
    expect(contexts.length).toBe(2);
    for (const ctx of contexts) {
      expect(collect(ctx, 'tls_certificate_sds_secret_configs').flat().map((c) => (c as Node).name)).toEqual(['default']);
      expect((collect(ctx, 'validation_context_sds_secret_config')[0] as Node).name).toBe('ROOTCA');
      expect(new Set(collect(ctx, 'cluster_name'))).toEqual(new Set(['sds-grpc']));
      const sans = collect(ctx, 'match_typed_subject_alt_names').flat() as Node[];
      expect(sans.length).toBeGreaterThan(0);
      for (const san of sans) {
        expect(san.san_type).toBe('URI');
        expect(Object.values(san.matcher as Node)[0]).toMatch(/^spiffe:\/\/cluster\.local\//);
      }
    }
  });
});
