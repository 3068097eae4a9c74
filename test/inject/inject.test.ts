// Agent injection as a workload owner meets it: `meshca inject -f` on every workload kind, and the
// mutating webhook answering real AdmissionReview JSON over HTTPS with a certificate meshca issued
// itself. The patched pod must validate as a Pod, injection must be idempotent, and the opt-out
// must be honoured.

import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Pod } from 'kubernetes-models/v1/Pod';
import { injectManifests, MAX_REVIEW_BYTES, reviewAdmission, type InjectOptions } from '../../src/inject/index.ts';
import { jsonPatch, kindOf } from '../fakes/kube_store.ts';
import { runMeshca, startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import { render, validateObject } from '../helpers/kube_schema.ts';

const OPTIONS: InjectOptions = { image: 'meshca/meshca:test', caAddr: 'meshca.meshca-system.svc:15012', audience: 'meshca' };

const POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-0', namespace: 'demo', labels: { app: 'web' } },
  spec: {
    serviceAccountName: 'web',
    initContainers: [{ name: 'migrate', image: 'busybox', command: ['true'] }],
    containers: [
      { name: 'app', image: 'registry.k8s.io/e2e-test-images/agnhost:2.52', volumeMounts: [{ name: 'data', mountPath: '/data' }] },
      { name: 'envoy', image: 'envoyproxy/envoy:v1.33.2' },
    ],
    volumes: [{ name: 'data', emptyDir: {} }],
  },
};

const podTemplate = { metadata: { labels: { app: 'web' } }, spec: structuredClone(POD.spec) };
const WORKLOADS = [
  POD,
  { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { selector: { matchLabels: { app: 'web' } }, template: podTemplate } },
  { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'web' }, spec: { serviceName: 'web', selector: { matchLabels: { app: 'web' } }, template: podTemplate } },
  { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'web' }, spec: { selector: { matchLabels: { app: 'web' } }, template: podTemplate } },
  { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'once' }, spec: { template: { ...podTemplate, spec: { ...podTemplate.spec, restartPolicy: 'Never' } } } },
  {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'nightly' },
    spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: { ...podTemplate, spec: { ...podTemplate.spec, restartPolicy: 'OnFailure' } } } } },
  },
];

type PodLike = { metadata: { annotations?: Record<string, string> }; spec: { initContainers: Array<Record<string, unknown> & { name: string }>; containers: Array<{ name: string; volumeMounts?: { name: string; mountPath: string }[] }>; volumes: Array<Record<string, unknown> & { name: string }> } };

function templateOf(obj: Record<string, unknown>): PodLike {
  const spec = obj.spec as Record<string, unknown>;
  if (obj.kind === 'Pod') return obj as unknown as PodLike;
  if (obj.kind === 'CronJob') return ((spec.jobTemplate as { spec: { template: unknown } }).spec.template) as PodLike;
  return spec.template as PodLike;
}

function expectAgentIn(pod: PodLike, sdsContainers: string[]): void {
  const agent = pod.spec.initContainers[0]!;
  expect(agent).toMatchObject({ name: 'meshca-agent', image: 'meshca/meshca:test', restartPolicy: 'Always' });
  expect(agent.args).toEqual(expect.arrayContaining(['agent', '--token-file=/var/run/secrets/tokens/meshca-token', '--sds-socket=/var/run/secrets/workload-spiffe-uds/socket']));
  // The agent's V8 flags (test/agent/agent_command.test.ts runs the agent under them).
  expect(agent.env).toEqual([{ name: 'NODE_OPTIONS', value: '--jitless --max-semi-space-size=1' }]);
  expect(pod.spec.initContainers.map((c) => c.name)).toEqual(['meshca-agent', 'migrate']);
  const token = pod.spec.volumes.find((v) => v.name === 'meshca-token')!;
  expect(token.projected).toEqual({ sources: [{ serviceAccountToken: { audience: 'meshca', expirationSeconds: 3600, path: 'meshca-token' } }] });
  expect(pod.spec.volumes.find((v) => v.name === 'workload-spiffe-uds')!.emptyDir).toBeDefined();
  expect(pod.spec.volumes.find((v) => v.name === 'meshca-root-cert')!.configMap).toMatchObject({ name: 'meshca-root-cert' });
  for (const c of pod.spec.containers) {
    const has = (c.volumeMounts ?? []).some((m) => m.mountPath === '/var/run/secrets/workload-spiffe-uds');
    expect(has, c.name).toBe(sdsContainers.includes(c.name));
  }
  expect(pod.spec.containers[0]!.volumeMounts![0]).toEqual({ name: 'data', mountPath: '/data' });
}

describe('meshca inject -f', () => {
  it('adds the agent to Pods, Deployments, StatefulSets, DaemonSets, Jobs and CronJobs, and each still validates', async () => {
    const text = WORKLOADS.map((w) => JSON.stringify(w)).join('\n---\n');
    const { yaml, reports } = injectManifests(text, OPTIONS);
    expect(reports.map((r) => [r.kind, r.injected])).toEqual(WORKLOADS.map((w) => [w.kind, true]));
    const out = parseAllDocuments(yaml).map((d) => d.toJS() as Record<string, unknown>);
    expect(out).toHaveLength(WORKLOADS.length);
    for (const obj of out) {
      await validateObject(obj as never);
      expectAgentIn(templateOf(obj), ['app', 'envoy']);
    }
  });

  it('is idempotent: injecting injected manifests changes nothing', () => {
    const once = injectManifests(WORKLOADS.map((w) => JSON.stringify(w)).join('\n---\n'), OPTIONS).yaml;
    const twice = injectManifests(once, OPTIONS);
    expect(twice.yaml).toBe(once);
    expect(twice.reports.every((r) => !r.injected && /already has the meshca-agent/.test(r.reason!))).toBe(true);
  });

  it('honours meshca.io/inject: "false" on the pod template or the workload, and leaves non-workloads alone', () => {
    const optedOut = structuredClone(WORKLOADS[1]!) as Record<string, unknown> & { spec: { template: { metadata: Record<string, unknown> } } };
    optedOut.spec.template.metadata.annotations = { 'meshca.io/inject': 'false' };
    const workloadOptOut = { ...structuredClone(WORKLOADS[2]!), metadata: { name: 'web', annotations: { 'meshca.io/inject': 'false' } } };
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: 'b' } };
    const input = [optedOut, workloadOptOut, cm].map((o) => JSON.stringify(o)).join('\n---\n');
    const { yaml, reports } = injectManifests(input, OPTIONS);
    expect(reports.map((r) => r.injected)).toEqual([false, false]);
    expect(reports[0]!.reason).toContain('meshca.io/inject: "false"');
    const out = parseAllDocuments(yaml).map((d) => d.toJS());
    expect(out).toEqual([optedOut, workloadOptOut, cm]);
  });

  it('mounts the SDS socket only into the containers meshca.io/sds-containers names', () => {
    const pod = { ...structuredClone(POD), metadata: { ...POD.metadata, annotations: { 'meshca.io/sds-containers': 'envoy' } } };
    const obj = parseAllDocuments(injectManifests(JSON.stringify(pod), OPTIONS).yaml)[0]!.toJS() as Record<string, unknown>;
    expectAgentIn(templateOf(obj), ['envoy']);
  });

  it('refuses a workload whose annotation names a container it does not have, naming it', () => {
    const pod = { ...structuredClone(POD), metadata: { ...POD.metadata, annotations: { 'meshca.io/sds-containers': 'proxy' } } };
    expect(() => injectManifests(JSON.stringify(pod), OPTIONS)).toThrow(/meshca.io\/sds-containers names "proxy", which the pod does not have/);
  });

  it('reads stdin with -f - through the real command line', async () => {
    const r = await runMeshca(['inject', '-f', '-', '--agent-image', 'meshca/meshca:test'], JSON.stringify(WORKLOADS[1]));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Deployment/web: agent injected');
    expectAgentIn(templateOf(parseAllDocuments(r.stdout)[0]!.toJS() as Record<string, unknown>), ['app', 'envoy']);
  });

  it('exits non-zero with one line on a file that is not YAML', async () => {
    const r = await runMeshca(['inject', '-f', '-'], 'a: [unclosed');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/document 1: not valid YAML/);
  });
});

function review(object: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'demo',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:serviceaccounts'] },
      object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
      ...extra,
    },
  };
}

describe('the injection webhook (serve --injector) over HTTPS', () => {
  let ca: TestCa;
  let port: number;

  beforeAll(async () => {
    ca = await startTestCa(['--injector', '--injector-listen', '127.0.0.1:0', '--agent-image', 'meshca/meshca:test']);
    port = Number(ca.server.injectorAddress!.split(':').pop());
  });
  afterAll(async () => ca?.stop());

  /** POSTs like the API server: TLS verified against meshca's root, the Service's DNS name. */
  function post(body: string, path = '/inject'): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path, method: 'POST', ca: ca.rootPem, servername: 'meshca-injector.meshca-system.svc', headers: { 'content-type': 'application/json' } },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('answers a real AdmissionReview with a JSONPatch; the patched pod validates as a Pod and carries the agent', async () => {
    const r = await post(JSON.stringify(review(POD)));
    expect(r.status).toBe(200);
    const answer = JSON.parse(r.text) as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; patchType: string; patch: string } };
    expect(answer).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true, patchType: 'JSONPatch' } });
    const patch = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8')) as unknown[];
    const patched = jsonPatch(POD, patch) as PodLike;
    new Pod(patched as never).validate();
    expectAgentIn(patched, ['app', 'envoy']);
    expect(patched.metadata.annotations).toEqual({ 'meshca.io/injected': 'true' });
    // Injected agents reach the CA through its Service.
    expect(patched.spec.initContainers[0]!.args).toContain('--ca-addr=meshca.meshca-system.svc:15012');
  });

  it('patches a pod with no volumes, init containers or annotations (add, not replace)', async () => {
    const bare = { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'web-' }, spec: { containers: [{ name: 'app', image: 'nginx' }] } };
    const answer = JSON.parse((await post(JSON.stringify(review(bare)))).text) as { response: { patch: string } };
    const patched = jsonPatch(bare, JSON.parse(Buffer.from(answer.response.patch, 'base64').toString())) as PodLike;
    new Pod(patched as never).validate();
    expect(patched.spec.initContainers.map((c) => c.name)).toEqual(['meshca-agent']);
  });

  it('is idempotent: a pod that already has the agent is allowed unchanged', async () => {
    const first = reviewAdmission(review(POD), OPTIONS);
    const injected = jsonPatch(POD, JSON.parse(Buffer.from(first.response.patch!, 'base64').toString()));
    const answer = JSON.parse((await post(JSON.stringify(review(injected)))).text) as { response: Record<string, unknown> };
    expect(answer.response).toEqual({ uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
  });

  it('honours meshca.io/inject: "false"', async () => {
    const pod = { ...POD, metadata: { ...POD.metadata, annotations: { 'meshca.io/inject': 'false' } } };
    const answer = JSON.parse((await post(JSON.stringify(review(pod)))).text) as { response: Record<string, unknown> };
    expect(answer.response).toEqual({ uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
  });

  it('allows what it does not inject into (not a Pod, not a CREATE) without a patch', async () => {
    const cm = review({ metadata: { name: 'x' }, data: {} }, { kind: { group: '', version: 'v1', kind: 'ConfigMap' } });
    expect((JSON.parse((await post(JSON.stringify(cm))).text) as { response: Record<string, unknown> }).response).not.toHaveProperty('patch');
    const update = review(POD, { operation: 'UPDATE' });
    expect((JSON.parse((await post(JSON.stringify(update))).text) as { response: Record<string, unknown> }).response).not.toHaveProperty('patch');
  });

  it('gives a malformed review a clear 400', async () => {
    expect(await post('{not json')).toEqual({ status: 400, text: 'the body is not JSON\n' });
    const noUid = review(POD) as { request: Record<string, unknown> };
    delete noUid.request.uid;
    expect(await post(JSON.stringify(noUid))).toEqual({ status: 400, text: 'the AdmissionReview has no request.uid\n' });
    const v1beta1 = { ...review(POD), apiVersion: 'admission.k8s.io/v1beta1' };
    expect((await post(JSON.stringify(v1beta1))).text).toMatch(/expected kind AdmissionReview, apiVersion admission.k8s.io\/v1/);
    expect((await post('{}', '/elsewhere')).status).toBe(404);
  });

  it('counts reviews by outcome in /metrics', async () => {
    const metrics = await (await fetch(`http://${ca.server.httpAddress}/metrics`)).text();
    expect(metrics).toMatch(/meshca_injector_reviews_total\{outcome="injected"\} [1-9]/);
    expect(metrics).toMatch(/meshca_injector_reviews_total\{outcome="error"\} [1-9]/);
  });
});

describe("the leader keeps the webhook's caBundle on the trust bundle", () => {
  const dir = tempDir('meshca-cabundle-');
  let api: FakeKubeApiServer;
  let ca: TestCa;

  beforeAll(async () => {
    api = await FakeKubeApiServer.start();
    // The configuration exactly as deploy/ applies it: no caBundle yet.
    const hook = render('deploy/overlays/dev').find((o) => o.kind === 'MutatingWebhookConfiguration')!;
    api.store.create(kindOf('mutatingwebhookconfigurations'), undefined, hook);
    const kubeconfig = api.writeKubeconfig(dir.path);
    ca = await startTestCa(['--injector', '--injector-listen', '127.0.0.1:0', '--leader-election', 'on', '--kubeconfig', kubeconfig, '--distribute-bundle', 'off', '--keys-poll', '200ms']);
  });
  afterAll(async () => {
    await ca?.stop();
    await api?.close();
    dir.cleanup();
  });

  const caBundle = () => {
    const hook = api.store.get(kindOf('mutatingwebhookconfigurations'), undefined, 'meshca-injector') as unknown as { webhooks: { clientConfig: { caBundle?: string } }[] };
    const b = hook.webhooks[0]!.clientConfig.caBundle;
    return b === undefined ? undefined : Buffer.from(b, 'base64').toString('utf8');
  };

  it('writes the trust bundle into caBundle, the API server can verify the webhook with it, and it follows a root rotation', async () => {
    await vi.waitFor(() => expect(caBundle()).toBe(ca.rootPem), { timeout: 5000, interval: 50 });
    // What the API server does: dial the Service name, trusting only the caBundle.
    const port = Number(ca.server.injectorAddress!.split(':').pop());
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/inject', method: 'POST', ca: caBundle()!, servername: 'meshca-injector.meshca-system.svc' }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end(JSON.stringify(review(POD)));
    });
    expect(status).toBe(200);
    // A review over the size cap is refused: 413 when its length is declared, before it is read; cut off when it is not.
    const post = (body: Buffer, chunked: boolean) =>
      new Promise<string>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/inject', method: 'POST', ca: caBundle()!, servername: 'meshca-injector.meshca-system.svc', headers: chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': body.length } }, (res) => {
          res.resume();
          resolve(`HTTP ${res.statusCode}`);
        });
        req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
        req.end(body);
      });
    const oversized = Buffer.alloc(MAX_REVIEW_BYTES + 1024, 0x20);
    expect(await post(oversized, false)).toBe('HTTP 413');
    expect(await post(oversized, true)).toMatch(/^(HTTP 413|ECONNRESET|EPIPE)$/);
    await vi.waitFor(() => expect(ca.rawLogs()).toContain(`the review is larger than ${MAX_REVIEW_BYTES} bytes`), { timeout: 5000, interval: 50 });

    const prepared = await runMeshca(['root', 'prepare', '--keys', ca.keysDir, '--db', 'memory:', '--json']);
    expect(prepared.stderr).toBe('');
    await vi.waitFor(() => expect(caBundle()?.match(/BEGIN CERTIFICATE/g)).toHaveLength(2), { timeout: 5000, interval: 50 });
    // The old root stays, first (oldest first; a root prepared within the same second comes after the one it joins).
    expect(caBundle()!.startsWith(ca.rootPem)).toBe(true);
  }, 30_000);
});
