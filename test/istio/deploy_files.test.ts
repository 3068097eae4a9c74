// deploy/istio/ is what docs/istio.md tells Istio users to apply: the files must parse, meshca
// must accept its own settings file, and the paths Istio reads must be the ones mounted.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadSettings } from '../../src/config/index.ts';
import { serveConfigFrom, SERVE_OPTIONS } from '../../src/server/index.ts';
import { REPO_ROOT } from '../helpers/serve.ts';

const file = (name: string) => join(REPO_ROOT, 'deploy/istio', name);
const yaml = (name: string) => parse(readFileSync(file(name), 'utf8')) as Record<string, any>;
const ROOT_MOUNT = '/var/run/secrets/meshca';

describe('deploy/istio', () => {
  it('meshca-config.yaml is a valid meshca serve configuration for Istio', () => {
    const { values } = loadSettings(SERVE_OPTIONS, ['--config', file('meshca-config.yaml'), '--cluster', 'cluster-2=/etc/meshca/clusters/cluster-2'], {});
    const config = serveConfigFrom(values);
    expect(config.audiences).toEqual(['istio-ca', 'meshca']);
    expect(config.ttl.maxTtlMs).toBeGreaterThanOrEqual(86_400_000);
    expect(config.clusterId).toBe('Kubernetes');
    expect(config.trustedNodeAccounts).toEqual([{ namespace: 'istio-system', serviceAccount: 'ztunnel' }]);
    expect(config.clusters).toEqual([{ id: 'cluster-2', kubeconfigPath: '/etc/meshca/clusters/cluster-2' }]);
  });

  it('istiod values and the IstioOperator overlay agree: CA_ADDR, CA_ROOT_CA in the mounted ConfigMap (not over /var/run/secrets/istio), istio-ca tokens', () => {
    const values = yaml('istiod-values.yaml');
    const op = yaml('istio-operator.yaml').spec;
    for (const v of [values, { ...op.values, meshConfig: op.meshConfig }]) {
      expect(v.global.caAddress).toBe('meshca.meshca-system.svc:15012');
      expect(v.global.sds.token.aud).toBe('istio-ca');
      expect(v.meshConfig.defaultConfig.proxyMetadata.CA_ROOT_CA).toBe(`${ROOT_MOUNT}/root-cert.pem`);
      expect(v.sidecarInjectorWebhook.defaultTemplates).toEqual(['sidecar', 'meshca']);
      const template = parse(v.sidecarInjectorWebhook.templates.meshca).spec;
      expect(template.containers[0].volumeMounts[0]).toMatchObject({ name: 'meshca-root-cert', mountPath: ROOT_MOUNT });
      expect(template.volumes[0].configMap.name).toBe('meshca-root-cert');
      expect(ROOT_MOUNT.startsWith('/var/run/secrets/istio')).toBe(false);
    }
  });

  it('the per-pod patch, the ztunnel values and the multi-cluster files are well-formed and consistent', () => {
    const patch = yaml('sidecar-root-cert-patch.yaml').spec.template.metadata.annotations;
    expect(JSON.parse(patch['sidecar.istio.io/userVolumeMount'])['meshca-root-cert'].mountPath).toBe(ROOT_MOUNT);
    expect(parse(patch['proxy.istio.io/config']).proxyMetadata.CA_ROOT_CA).toBe(`${ROOT_MOUNT}/root-cert.pem`);
    const zt = yaml('ztunnel-values.yaml');
    expect(zt.env.CA_ROOT_CA).toBe(`${ROOT_MOUNT}/root-cert.pem`);
    expect(zt.volumeMounts[0].mountPath).toBe(ROOT_MOUNT);
    for (const name of ['ambient-rbac.yaml', 'remote-cluster.yaml']) {
      for (const doc of parseAllDocuments(readFileSync(file(name), 'utf8'))) expect(doc.errors).toEqual([]);
    }
    const remotePatch = yaml('meshca-remote-clusters-patch.yaml').spec.template.spec;
    expect(remotePatch.containers[0].env[0]).toEqual({ name: 'MESHCA_CLUSTER', value: '/etc/meshca/clusters' });
    expect(remotePatch.containers[0].volumeMounts[0].mountPath).toBe('/etc/meshca/clusters');
  });
});
