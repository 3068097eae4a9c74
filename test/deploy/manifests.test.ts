// deploy/ as an operator applies it: each kustomization renders with `kubectl kustomize`, every
// rendered object validates against the Kubernetes schema (kubernetes-models), every flag and
// MESHCA_* variable the manifests pass exists in the settings table, and the contracts the docs
// promise (ports, namespace, probes, securityContext, least-privilege RBAC) hold.

import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { SETTINGS } from '../../src/config/index.ts';
import { envNameOf } from '../../src/config/settings.ts';
import { SERVE_OPTIONS } from '../../src/server/index.ts';
import { render, validateObject, type K8sObject } from '../helpers/kube_schema.ts';

type Container = { name: string; args?: string[]; env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[]; securityContext?: Record<string, unknown>; [k: string]: unknown };

function meshcaContainer(objects: K8sObject[]): Container {
  const dep = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'meshca')!;
  return (dep as unknown as { spec: { template: { spec: { containers: Container[] } } } }).spec.template.spec.containers[0]!;
}

function deploymentSpec(objects: K8sObject[]): { replicas: number; template: { spec: Record<string, unknown> & { containers: Container[] } } } {
  return (objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'meshca') as unknown as { spec: ReturnType<typeof deploymentSpec> }).spec;
}

const OVERLAYS = ['deploy/overlays/dev', 'deploy/overlays/ha'] as const;
const EXAMPLES = ['deploy/examples/envoy-workload', 'deploy/examples/postgres', 'deploy/monitoring'] as const;

describe('deploy/ kustomizations', () => {
  const rendered = new Map<string, K8sObject[]>();
  const get = (dir: string) => {
    if (!rendered.has(dir)) rendered.set(dir, render(dir));
    return rendered.get(dir)!;
  };

  it.each([...OVERLAYS, ...EXAMPLES])('%s renders and every object validates against the Kubernetes schema', async (dir) => {
    const objects = get(dir);
    expect(objects.length).toBeGreaterThan(0);
    for (const o of objects) await expect(validateObject(o), `${o.kind}/${o.metadata.name}`).resolves.toBeUndefined();
  });

  it('the validator would catch a broken object (a string port)', async () => {
    const svc = structuredClone(get('deploy/overlays/dev').find((o) => o.kind === 'Service')!) as K8sObject & { spec: { ports: { port: unknown }[] } };
    svc.spec.ports[0]!.port = 'fifteen';
    await expect(validateObject(svc)).rejects.toThrow(/port/);
  });

  it.each(OVERLAYS)('%s passes only flags and MESHCA_* variables that exist in the settings table and serve accepts', (dir) => {
    const c = meshcaContainer(get(dir));
    expect(c.args![0]).toBe('serve');
    const known = new Set<string>(SERVE_OPTIONS.settings.filter((s) => s in SETTINGS));
    for (const arg of c.args!.slice(1)) {
      const m = /^--(?:no-)?([a-z0-9-]+)(?:=.*)?$/.exec(arg);
      expect(m, arg).not.toBeNull();
      expect(known.has(m![1]!), `${arg} is not in src/config/settings.ts`).toBe(true);
    }
    const envNames = new Set([...known].map(envNameOf));
    for (const e of c.env ?? []) expect(envNames.has(e.name), `${e.name} is not a setting`).toBe(true);
  });

  it.each(OVERLAYS)('%s: everything lives in meshca-system; Service ports 15012 grpc-tls and 15014 http-monitoring', (dir) => {
    const objects = get(dir);
    for (const o of objects) {
      if (['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration'].includes(o.kind)) continue;
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('meshca-system');
    }
    const svc = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'meshca') as unknown as { spec: { ports: { name: string; port: number }[] } };
    expect(svc.spec.ports.map((p) => [p.name, p.port])).toEqual([['grpc-tls', 15012], ['http-monitoring', 15014]]);
  });

  it.each(OVERLAYS)('%s: probes on 15014 /healthz and /readyz; non-root, read-only root, no capabilities, seccomp RuntimeDefault; requests and limits', (dir) => {
    const spec = deploymentSpec(get(dir));
    const c = spec.template.spec.containers[0]! as Container & {
      livenessProbe: { httpGet: { path: string; port: string } };
      readinessProbe: { httpGet: { path: string; port: string } };
      ports: { name: string; containerPort: number }[];
      resources: { requests: Record<string, string>; limits: Record<string, string> };
    };
    const portOf = (name: string) => c.ports.find((p) => p.name === name)!.containerPort;
    expect([c.livenessProbe.httpGet.path, portOf(c.livenessProbe.httpGet.port)]).toEqual(['/healthz', 15014]);
    expect([c.readinessProbe.httpGet.path, portOf(c.readinessProbe.httpGet.port)]).toEqual(['/readyz', 15014]);
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
    expect((spec.template.spec.securityContext as { runAsUser: number }).runAsUser).toBeGreaterThan(0);
    expect(c.resources.requests).toHaveProperty('cpu');
    expect(c.resources.requests).toHaveProperty('memory');
    expect(c.resources.limits).toHaveProperty('memory');
  });

  it('dev: one replica, SQLite ledger on an emptyDir, TokenReview, development tokens off', () => {
    const spec = deploymentSpec(get('deploy/overlays/dev'));
    const c = spec.template.spec.containers[0]! as Container & { env: { name: string; value?: string }[]; volumeMounts: { name: string; mountPath: string }[] };
    expect(spec.replicas).toBe(1);
    const db = c.env.find((e) => e.name === 'MESHCA_DB')!.value!;
    expect(db).toMatch(/^sqlite:\/var\/lib\/meshca\//);
    const mount = c.volumeMounts.find((m) => db.slice('sqlite:'.length).startsWith(m.mountPath))!;
    const volume = (spec.template.spec.volumes as { name: string; emptyDir?: unknown }[]).find((v) => v.name === mount.name)!;
    expect(volume.emptyDir).toBeDefined();
    expect(c.args).toEqual(expect.arrayContaining(['--authn=tokenreview', '--dev-tokens=false']));
  });

  it('ha: three replicas, PostgreSQL URL from Secret meshca-ledger key url, anti-affinity, a PodDisruptionBudget', () => {
    const objects = get('deploy/overlays/ha');
    const spec = deploymentSpec(objects);
    expect(spec.replicas).toBe(3);
    const c = spec.template.spec.containers[0]! as Container & { env: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[] };
    expect(c.env.find((e) => e.name === 'MESHCA_DB')!.valueFrom!.secretKeyRef).toEqual({ name: 'meshca-ledger', key: 'url' });
    expect(spec.template.spec.affinity).toMatchObject({ podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname' }] } });
    const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget') as unknown as { spec: { minAvailable: number } };
    expect(pdb.spec.minAvailable).toBe(2);
  });

  it('RBAC is least privilege: no wildcards, Secrets and Leases only in meshca-system and by name where the API allows', () => {
    const objects = get('deploy/overlays/ha');
    type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
    const cluster = (objects.find((o) => o.kind === 'ClusterRole') as unknown as { rules: Rule[] }).rules;
    const ns = objects.find((o) => o.kind === 'Role') as unknown as { metadata: { namespace: string }; rules: Rule[] };
    for (const r of [...cluster, ...ns.rules]) {
      expect([...r.apiGroups, ...r.resources, ...r.verbs]).not.toContain('*');
    }
    expect(cluster.flatMap((r) => r.resources)).not.toContain('secrets');
    expect(cluster.flatMap((r) => r.resources)).not.toContain('leases');
    expect(cluster.find((r) => r.resources.includes('tokenreviews'))!.verbs).toEqual(['create']);
    expect(cluster.find((r) => r.resources.includes('namespaces'))!.verbs).toEqual(['get', 'list', 'watch']);
    expect(ns.metadata.namespace).toBe('meshca-system');
    for (const r of ns.rules) {
      // create cannot be limited by name in Kubernetes RBAC; everything else is.
      if (r.verbs.some((v) => v !== 'create')) expect(r.resourceNames, JSON.stringify(r)).toBeDefined();
    }
    const secretRule = ns.rules.find((r) => r.resources.includes('secrets') && r.resourceNames)!;
    expect(secretRule.resourceNames).toEqual(['meshca-cacerts']);
    const args = meshcaContainer(objects).args!;
    expect(args).toContain('--keys=k8s-secret:meshca-system/meshca-cacerts');
  });

  it('the webhook targets labelled namespaces, honours the opt-out and reaches the pods on 15017', () => {
    const objects = get('deploy/overlays/dev');
    const hook = (objects.find((o) => o.kind === 'MutatingWebhookConfiguration') as unknown as {
      webhooks: { namespaceSelector: unknown; clientConfig: { service: { name: string; namespace: string; path: string } }; admissionReviewVersions: string[]; sideEffects: string }[];
    }).webhooks[0]!;
    expect(hook.namespaceSelector).toEqual({ matchLabels: { 'meshca.io/injection': 'enabled' } });
    expect(hook.admissionReviewVersions).toEqual(['v1']);
    expect(hook.sideEffects).toBe('None');
    const svc = objects.find((o) => o.kind === 'Service' && o.metadata.name === hook.clientConfig.service.name) as unknown as { spec: { ports: { targetPort: string }[] } };
    const c = deploymentSpec(objects).template.spec.containers[0] as Container & { ports: { name: string; containerPort: number }[] };
    expect(c.ports.find((p) => p.name === svc.spec.ports[0]!.targetPort)!.containerPort).toBe(15017);
    expect(c.args).toContain('--injector');
  });

  it("the Envoy example reads default and ROOTCA from the agent's SDS socket and checks the peer's SPIFFE ID", () => {
    const objects = get('deploy/examples/envoy-workload');
    const configs = objects.filter((o) => o.kind === 'ConfigMap');
    expect(configs).toHaveLength(2);
    for (const cm of configs) {
      const text = (cm as unknown as { data: { 'envoy.yaml': string } }).data['envoy.yaml'];
      expect(text).toContain('pipe: { path: /var/run/secrets/workload-spiffe-uds/socket }');
      expect(text).toContain('name: ROOTCA');
      expect(text).toContain('spiffe://cluster.local/ns/demo/');
      expect(parseAllDocuments(text)[0]!.errors).toEqual([]);
    }
    const ns = objects.find((o) => o.kind === 'Namespace')!;
    expect(ns.metadata.labels).toMatchObject({ 'meshca.io/injection': 'enabled' });
  });
});
