// A fake Kubernetes API server for tests: real HTTPS on 127.0.0.1 with its own test CA, speaking
// TokenReview, OIDC discovery/JWKS, and ConfigMaps/Secrets/Leases/Namespaces/Pods (CRUD, patch, list,
// watch) with kube-apiserver's Status objects and codes. It must never be used outside tests.

import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { loadKubeconfigText, type KubeConfig } from '../../src/kube/index.ts';
import { failureStatus, KubeApiError, kubeError, reasonForCode, type KubeStatus } from './kube_status.ts';
import { KubeStore, kindOf, matchesEvent, RESOURCES, type ResourceKind, type Selectors } from './kube_store.ts';
import { KubeTokenIssuer } from './kube_token_issuer.ts';
import { makeTestServingMaterial } from './kube_test_ca.ts';

export { KubeTokenIssuer, type MintOptions, type ReviewStatus } from './kube_token_issuer.ts';
export type { KubeObject } from './kube_store.ts';

export const FAKE_ADMIN_TOKEN = 'fake-apiserver-admin-token';
/** The user the fake's RBAC denials name: meshca's own service account. */
const CLIENT_USER = 'system:serviceaccount:meshca-system:meshca';
const DEFAULT_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease', 'meshca-system'];
const TOKENREVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';

export interface FakeKubeApiServerOptions {
  readonly namespaces?: readonly string[];
  /** The API server's own audiences (what legacy tokens are good for). */
  readonly apiAudiences?: readonly string[];
  readonly now?: () => number;
}

export interface InjectedFailure {
  /** HTTP status to answer with: 401, 403, 404, 409, 429, 500, 503… */
  readonly status: number;
  /** How many matching requests fail (Infinity: until cleared). */
  readonly count: number;
  /** Substring or pattern matched against "METHOD /path". */
  readonly match?: string | RegExp;
  readonly retryAfterSeconds?: number;
}

export interface RecordedCall {
  readonly method: string;
  readonly path: string;
  readonly atMs: number;
  status?: number;
}

function routeLabel(method: string, path: string): string {
  return `${method} ${path}`;
}

function matches(label: string, match: string | RegExp | undefined): boolean {
  if (match === undefined) return true;
  return typeof match === 'string' ? label.includes(match) : match.test(label);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return undefined;
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw kubeError('BadRequest', 'the body of the request was in an unknown format');
  }
}

interface Route {
  kind: ResourceKind;
  namespace?: string;
  name?: string;
}

function parseResourcePath(path: string): Route | undefined {
  let m = /^\/api\/v1\/namespaces(?:\/([^/]+))?$/.exec(path);
  if (m) return { kind: kindOf('namespaces'), ...(m[1] ? { name: decodeURIComponent(m[1]) } : {}) };
  m = /^\/api\/v1\/namespaces\/([^/]+)\/(configmaps|secrets|pods)(?:\/([^/]+))?$/.exec(path);
  if (m) return { kind: kindOf(m[2]!), namespace: decodeURIComponent(m[1]!), ...(m[3] ? { name: decodeURIComponent(m[3]) } : {}) };
  m = /^\/api\/v1\/(configmaps|secrets|pods)$/.exec(path);
  if (m) return { kind: kindOf(m[1]!) };
  m = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/.exec(path);
  if (m) return { kind: kindOf('leases'), namespace: decodeURIComponent(m[1]!), ...(m[2] ? { name: decodeURIComponent(m[2]) } : {}) };
  if (path === '/apis/coordination.k8s.io/v1/leases') return { kind: kindOf('leases') };
  m = /^\/apis\/admissionregistration\.k8s\.io\/v1\/mutatingwebhookconfigurations(?:\/([^/]+))?$/.exec(path);
  if (m) return { kind: kindOf('mutatingwebhookconfigurations'), ...(m[1] ? { name: decodeURIComponent(m[1]) } : {}) };
  return undefined;
}

function apiResourceList(groupVersion: string): unknown {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion,
    resources: RESOURCES.filter((r) => (r.group ? `${r.group}/${r.version}` : r.version) === groupVersion).map((r) => ({
      name: r.resource,
      singularName: r.kind.toLowerCase(),
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    })),
  };
}

export class FakeKubeApiServer {
  readonly store: KubeStore;
  readonly tokens: KubeTokenIssuer;
  readonly caPem: string;
  /** Artificial delay before every answer. */
  latencyMs = 0;
  readonly calls: RecordedCall[] = [];
  /** TLS connections accepted (handshakes completed) since start: a client that reuses connections keeps it low. */
  tlsConnections = 0;
  private readonly server: Server;
  private readonly now: () => number;
  private readonly sockets = new Set<Socket>();
  private readonly watches = new Set<ServerResponse>();
  private failures: { spec: InjectedFailure; left: number }[] = [];
  private readonly forbidden = new Set<string>();
  private port = 0;
  private listening = false;

  private constructor(server: Server, caPem: string, opts: FakeKubeApiServerOptions) {
    this.server = server;
    this.caPem = caPem;
    this.now = opts.now ?? (() => Date.now());
    this.store = new KubeStore(opts.namespaces ?? DEFAULT_NAMESPACES, this.now);
    this.tokens = new KubeTokenIssuer('', opts.apiAudiences ?? ['https://kubernetes.default.svc.cluster.local'], this.now);
  }

  static async start(opts: FakeKubeApiServerOptions = {}): Promise<FakeKubeApiServer> {
    const material = await makeTestServingMaterial({ dns: ['localhost', 'kubernetes.default.svc'], ips: ['127.0.0.1'] });
    let self: FakeKubeApiServer | undefined;
    const server = createServer({ key: material.keyPem, cert: material.certPem }, (req, res) => {
      void self!.handle(req, res);
    });
    self = new FakeKubeApiServer(server, material.caPem, opts);
    server.on('connection', (socket: Socket) => {
      self!.sockets.add(socket);
      socket.on('close', () => self!.sockets.delete(socket));
    });
    server.on('secureConnection', () => self!.tlsConnections++);
    await self.listen(0);
    // The issuer is the server's own URL, as with --service-account-issuer=https://<apiserver>.
    self.tokens.issuer = self.url;
    return self;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        if (addr && typeof addr === 'object') this.port = addr.port;
        this.listening = true;
        resolve();
      });
    });
  }

  /** A kubeconfig that points a Kubernetes client at this server, as in production. */
  writeKubeconfig(dir: string, opts: { token?: string; file?: string } = {}): string {
    const path = join(dir, opts.file ?? 'kubeconfig');
    // JSON is YAML: any client reads it like any kubeconfig.
    writeFileSync(path, this.kubeconfigText(opts), { mode: 0o600 });
    return path;
  }

  kubeconfigText(opts: { token?: string } = {}): string {
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: this.url, 'certificate-authority-data': Buffer.from(this.caPem).toString('base64') } }],
      users: [{ name: 'meshca', user: { token: opts.token ?? FAKE_ADMIN_TOKEN } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'meshca', namespace: 'meshca-system' } }],
      'current-context': 'fake',
    };
    return JSON.stringify(config, null, 2);
  }

  /** The configuration meshca's Kubernetes client (src/kube) gets from that kubeconfig. */
  kubeConfig(opts: { token?: string } = {}): KubeConfig {
    return loadKubeconfigText(this.kubeconfigText(opts), join(process.cwd(), 'fake-kubeconfig'));
  }

  // ---- pods ----

  /**
   * Schedules a pod: an object in the store (list/watch see it) and a pod the token issuer binds
   * tokens to, with the same uid and node. Returns the pod's uid.
   */
  addPod(namespace: string, name: string, opts: { serviceAccount: string; nodeName: string }): string {
    const created = this.store.create(kindOf('pods'), namespace, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace },
      spec: { serviceAccountName: opts.serviceAccount, nodeName: opts.nodeName, containers: [{ name: 'app', image: 'app' }] },
      status: { phase: 'Running' },
    });
    const uid = created.metadata.uid!;
    this.tokens.addPod(namespace, name, { uid, nodeName: opts.nodeName });
    return uid;
  }

  /** Deletes a pod from the store (watchers see DELETED) and from the token issuer's table. */
  deletePod(namespace: string, name: string): void {
    this.store.delete(kindOf('pods'), namespace, name, undefined);
    this.tokens.deletePod(namespace, name);
  }

  // ---- failure injection and counters ----

  injectFailures(spec: InjectedFailure): void {
    this.failures.push({ spec, left: spec.count });
  }

  clearFailures(): void {
    this.failures = [];
  }

  /** RBAC: make `resource` (e.g. "tokenreviews", "configmaps") answer 403 Forbidden. */
  setForbidden(resource: string, forbidden = true): void {
    if (forbidden) this.forbidden.add(resource);
    else this.forbidden.delete(resource);
  }

  callCount(match?: string | RegExp): number {
    return this.calls.filter((c) => matches(routeLabel(c.method, c.path), match)).length;
  }

  tokenReviewCount(): number {
    return this.callCount(`POST ${TOKENREVIEW_PATH}`);
  }

  /** Calls per route, "METHOD /path" → count. */
  callsByRoute(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.calls) out[routeLabel(c.method, c.path)] = (out[routeLabel(c.method, c.path)] ?? 0) + 1;
    return out;
  }

  /** Calls per wall-clock second since the first call: index i = calls in second i. */
  callsPerSecond(match?: string | RegExp): number[] {
    const times = this.calls.filter((c) => matches(routeLabel(c.method, c.path), match)).map((c) => c.atMs);
    if (times.length === 0) return [];
    const first = times[0]!;
    const out: number[] = [];
    for (const t of times) {
      const i = Math.floor((t - first) / 1000);
      while (out.length <= i) out.push(0);
      out[i]! += 1;
    }
    return out;
  }

  /** The most calls seen in any window of `windowMs` (sliding), for rate-limit checks. */
  maxCallsWithin(windowMs: number, match?: string | RegExp): number {
    const times = this.calls.filter((c) => matches(routeLabel(c.method, c.path), match)).map((c) => c.atMs).sort((a, b) => a - b);
    let best = 0;
    let start = 0;
    for (let end = 0; end < times.length; end++) {
      while (times[end]! - times[start]! >= windowMs) start++;
      best = Math.max(best, end - start + 1);
    }
    return best;
  }

  resetCalls(): void {
    this.calls.length = 0;
  }

  // ---- availability ----

  /** Stops listening and drops every connection: clients see ECONNREFUSED. */
  async goDown(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const w of this.watches) w.destroy();
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Listens again on the same port. */
  async comeBack(): Promise<void> {
    if (!this.listening) await this.listen(this.port);
  }

  async close(): Promise<void> {
    await this.goDown();
  }

  // ---- request handling ----

  private send(res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private sendStatus(res: ServerResponse, status: KubeStatus, retryAfterSeconds?: number): void {
    const headers: Record<string, string> = retryAfterSeconds !== undefined ? { 'retry-after': String(retryAfterSeconds) } : {};
    this.send(res, status.code, status, headers);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const call: RecordedCall = { method, path: url.pathname, atMs: this.now() };
    this.calls.push(call);
    res.on('finish', () => (call.status = res.statusCode));
    try {
      if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
      const label = routeLabel(method, url.pathname);
      const failure = this.failures.find((f) => f.left > 0 && matches(label, f.spec.match));
      if (failure) {
        failure.left -= 1;
        const reason = reasonForCode(failure.spec.status);
        const message = failure.spec.status === 429 ? 'Too many requests, please try again later.' : `injected failure (${reason})`;
        const details = failure.spec.retryAfterSeconds !== undefined ? { retryAfterSeconds: failure.spec.retryAfterSeconds } : undefined;
        throw new KubeApiError({ ...failureStatus(reason, message, details), code: failure.spec.status }, failure.spec.retryAfterSeconds);
      }
      if (await this.handlePublic(url.pathname, res)) return;
      if (req.headers.authorization !== `Bearer ${FAKE_ADMIN_TOKEN}`) throw kubeError('Unauthorized', 'Unauthorized');
      await this.route(req, res, url, method);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof KubeApiError) this.sendStatus(res, err.status, err.retryAfterSeconds);
      else this.sendStatus(res, failureStatus('InternalError', `Internal error occurred: ${err instanceof Error ? err.message : String(err)}`));
    }
  }

  /** Discovery endpoints served to anyone (clusters bind issuer discovery to unauthenticated). */
  private async handlePublic(path: string, res: ServerResponse): Promise<boolean> {
    if (path === '/.well-known/openid-configuration') {
      this.send(res, 200, this.tokens.discovery(`${this.url}/openid/v1/jwks`));
      return true;
    }
    if (path === '/openid/v1/jwks') {
      this.send(res, 200, this.tokens.jwks());
      return true;
    }
    return false;
  }

  private checkRbac(resource: string, group: string, verb: string, namespace?: string): void {
    if (!this.forbidden.has(resource)) return;
    const where = namespace ? `in the namespace "${namespace}"` : 'at the cluster scope';
    throw kubeError(
      'Forbidden',
      `${group ? `${resource}.${group}` : resource} is forbidden: User "${CLIENT_USER}" cannot ${verb} resource "${resource}" in API group "${group}" ${where}`,
      { group, kind: resource },
    );
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL, method: string): Promise<void> {
    const path = url.pathname;
    if (path === TOKENREVIEW_PATH) {
      if (method !== 'POST') throw kubeError('MethodNotAllowed', `the server does not allow this method on the requested resource`);
      this.checkRbac('tokenreviews', 'authentication.k8s.io', 'create');
      const body = (await readBody(req)) as { spec?: { token?: string; audiences?: string[] } } | undefined;
      const token = body?.spec?.token;
      if (!token) throw kubeError('Invalid', 'TokenReview.authentication.k8s.io "" is invalid: spec.token: Required value');
      const status = await this.tokens.review(token, body?.spec?.audiences ?? []);
      this.send(res, 201, {
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: { audiences: body?.spec?.audiences },
        status,
      });
      return;
    }
    if (path === '/version') {
      this.send(res, 200, { major: '1', minor: '33', gitVersion: 'v1.33.0-fake' });
      return;
    }
    if (path === '/api/v1' || path === '/apis/coordination.k8s.io/v1' || path === '/apis/admissionregistration.k8s.io/v1') {
      this.send(res, 200, apiResourceList(path === '/api/v1' ? 'v1' : path.slice('/apis/'.length)));
      return;
    }
    const route = parseResourcePath(path);
    if (!route) throw kubeError('NotFound', 'the server could not find the requested resource');
    const { kind, namespace, name } = route;
    const selectors: Selectors = {
      ...(url.searchParams.get('labelSelector') ? { labelSelector: url.searchParams.get('labelSelector')! } : {}),
      ...(url.searchParams.get('fieldSelector') ? { fieldSelector: url.searchParams.get('fieldSelector')! } : {}),
    };
    const isWatch = ['true', '1'].includes(url.searchParams.get('watch') ?? '');
    const verb = method === 'GET' ? (name ? 'get' : isWatch ? 'watch' : 'list') : { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[method] ?? method.toLowerCase();
    this.checkRbac(kind.resource, kind.group, verb, namespace);
    const itemNs = kind.namespaced ? namespace : undefined;
    if (name === undefined) {
      if (method === 'GET' && isWatch) return this.watch(res, kind, namespace, selectors, url);
      if (method === 'GET') {
        const { items, resourceVersion } = this.store.list(kind, namespace, selectors);
        this.send(res, 200, { kind: `${kind.kind}List`, apiVersion: kind.group ? `${kind.group}/${kind.version}` : kind.version, metadata: { resourceVersion }, items });
        return;
      }
      if (method === 'POST') {
        if (kind.namespaced && namespace === undefined) throw kubeError('MethodNotAllowed', 'the server does not allow this method on the requested resource');
        this.send(res, 201, this.store.create(kind, itemNs, await readBody(req)));
        return;
      }
      throw kubeError('MethodNotAllowed', 'the server does not allow this method on the requested resource');
    }
    const objNs = kind.namespaced ? namespace : undefined;
    switch (method) {
      case 'GET':
        this.send(res, 200, this.store.get(kind, objNs, name));
        return;
      case 'PUT':
        this.send(res, 200, this.store.update(kind, objNs, name, await readBody(req)));
        return;
      case 'PATCH':
        this.send(res, 200, this.store.patch(kind, objNs, name, req.headers['content-type'] ?? '', await readBody(req)));
        return;
      case 'DELETE':
        this.send(res, 200, this.store.delete(kind, objNs, name, await readBody(req)));
        return;
      default:
        throw kubeError('MethodNotAllowed', 'the server does not allow this method on the requested resource');
    }
  }

  /** Streams watch events as JSON lines, from `resourceVersion` on (or the current state first). */
  private watch(res: ServerResponse, kind: ResourceKind, namespace: string | undefined, selectors: Selectors, url: URL): void {
    const rvParam = url.searchParams.get('resourceVersion');
    const sinceRv = rvParam && rvParam !== '0' ? Number(rvParam) : undefined;
    if (sinceRv !== undefined && !Number.isFinite(sinceRv)) throw kubeError('BadRequest', `invalid resourceVersion "${rvParam}"`);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    this.watches.add(res);
    const write = (type: string, object: unknown): void => {
      res.write(`${JSON.stringify({ type, object })}\n`);
    };
    if (sinceRv === undefined) {
      for (const item of this.store.list(kind, namespace, selectors).items) write('ADDED', item);
    } else {
      for (const e of this.store.eventsSince(kind, namespace, sinceRv, selectors)) write(e.type, e.object);
    }
    const unsubscribe = this.store.subscribe((e) => {
      if (matchesEvent(e, kind, namespace, selectors)) write(e.type, e.object);
    });
    const timeoutSeconds = Number(url.searchParams.get('timeoutSeconds') ?? '0');
    const timer = timeoutSeconds > 0 ? setTimeout(() => res.end(), timeoutSeconds * 1000) : undefined;
    res.on('close', () => {
      unsubscribe();
      if (timer) clearTimeout(timer);
      this.watches.delete(res);
    });
  }
}
