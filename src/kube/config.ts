// Where the Kubernetes API server is and how to authenticate to it: a kubeconfig file (its current
// context or a named one) or the pod's in-cluster service account. The common cases (bearer token,
// token file, client certificate, basic auth, CA file or data, insecure-skip-tls-verify when the file
// says so) are read here with the `yaml` package. What this does not do (exec plugins, auth
// providers, proxies, merged KUBECONFIG lists) is handed to @kubernetes/client-node, imported only
// then: loading it costs ~80 MB of RSS (docs/performance.md), which no common setup should pay.

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isIPv6 } from 'node:net';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import type { Dispatcher } from 'undici';
import { parse as parseYaml } from 'yaml';
import { describeError, MeshcaError } from '../errors/index.ts';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A token file is read again at most this often (client-go re-reads it every minute). */
export const TOKEN_FILE_REREAD_MS = 60_000;

export interface KubeTls {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly rejectUnauthorized?: boolean;
  readonly servername?: string;
}

/** How a request reaches the API server and proves who it is. */
export interface KubeAuth {
  /** TLS settings for new connections (files read now). */
  tls(): Promise<KubeTls>;
  /** Headers for a request made now (Authorization), without the token in any log. */
  headers(): Promise<Record<string, string>>;
  /** A per-request dispatcher when the connection is not a plain TLS one (a proxy); undefined otherwise. */
  proxyDispatcher?(): Promise<Dispatcher | undefined>;
}

export interface KubeConfig {
  /** The API server's URL without a trailing slash, e.g. https://10.0.0.1:443. */
  readonly server: string;
  /** The context's namespace (in-cluster: the pod's), if any. */
  readonly namespace: string | undefined;
  /** What was loaded, for messages: a file path or "in-cluster". */
  readonly source: string;
  /** True when @kubernetes/client-node does the authentication (exec, auth-provider, proxy). */
  readonly delegated: boolean;
  readonly auth: KubeAuth;
  /** The cluster CA as PEM, if the configuration names one (read now). */
  clusterCaPem(): string | undefined;
}

function fail(source: string, message: string, cause?: unknown): never {
  throw new MeshcaError('BAD_CONFIG', `${source}: ${message}`, cause === undefined ? undefined : { cause });
}

function trimSlash(server: string): string {
  return server.replace(/\/+$/, '');
}

function checkServer(source: string, field: string, server: string, skipTlsVerify: boolean): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    fail(source, `${field}: "${server}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') fail(source, `${field}: "${server}" must be an https URL`);
  // As client-node: plain HTTP only when the file explicitly skips TLS verification.
  if (url.protocol === 'http:' && !skipTlsVerify) fail(source, `${field}: "${server}" is plain HTTP, allowed only with insecure-skip-tls-verify: true`);
  return trimSlash(server);
}

/** A token file read again at most every TOKEN_FILE_REREAD_MS (projected tokens rotate under us). */
function tokenFileReader(path: string): () => string {
  let cached: { token: string; readAtMs: number } | undefined;
  return () => {
    const now = Date.now();
    if (!cached || now - cached.readAtMs >= TOKEN_FILE_REREAD_MS) cached = { token: readFileSync(path, 'utf8').trim(), readAtMs: now };
    return cached.token;
  };
}

function readIfExists(path: string): Buffer | undefined {
  return existsSync(path) ? readFileSync(path) : undefined;
}

/** The pod's service account (KUBERNETES_SERVICE_HOST/PORT, token, ca.crt, namespace). */
export function loadInClusterConfig(env: NodeJS.ProcessEnv = process.env, saDir: string = SERVICE_ACCOUNT_DIR): KubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new MeshcaError('BAD_CONFIG', 'kubeconfig: not running in a Kubernetes pod (no in-cluster API address); pass --kubeconfig');
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  const caPath = join(saDir, 'ca.crt');
  const token = tokenFileReader(join(saDir, 'token'));
  const namespacePath = join(saDir, 'namespace');
  const namespace = existsSync(namespacePath) ? readFileSync(namespacePath, 'utf8').trim() : undefined;
  return {
    server,
    namespace,
    source: 'in-cluster',
    delegated: false,
    auth: {
      tls: async () => {
        const ca = readIfExists(caPath);
        return ca ? { ca } : {};
      },
      headers: async () => ({ authorization: `Bearer ${token()}` }),
    },
    clusterCaPem: () => readIfExists(caPath)?.toString('utf8'),
  };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(source: string, obj: Obj, field: string, where: string): string | undefined {
  const v = obj[field];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') fail(source, `${where}.${field} must be a string`);
  return v;
}

function named(source: string, doc: Obj, list: 'clusters' | 'users' | 'contexts', key: 'cluster' | 'user' | 'context', name: string): Obj {
  const entries = doc[list];
  if (entries !== undefined && entries !== null && !Array.isArray(entries)) fail(source, `${list} must be a list`);
  const entry = (entries as unknown[] | undefined ?? []).find((e) => isObj(e) && e.name === name);
  if (!entry) fail(source, `${list}: no entry named "${name}"`);
  const body = (entry as Obj)[key];
  if (body === undefined || body === null) return {};
  if (!isObj(body)) fail(source, `${list}["${name}"].${key} must be a mapping`);
  return body;
}

function base64(source: string, value: string, where: string): Buffer {
  if (!/^[A-Za-z0-9+/=\s]*$/.test(value)) fail(source, `${where} is not base64`);
  return Buffer.from(value, 'base64');
}

/** The lean reading of one kubeconfig document; undefined when only client-node can serve it. */
function parseKubeconfig(source: string, text: string, contextName: string | undefined): KubeConfig | undefined {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    fail(source, `not YAML: ${describeError(err)}`, err);
  }
  if (!isObj(doc)) fail(source, 'not a kubeconfig (expected a mapping with clusters, users, contexts)');
  const current = contextName ?? str(source, doc, 'current-context', 'kubeconfig');
  if (!current) fail(source, 'current-context is not set (and no context was named)');
  const context = named(source, doc, 'contexts', 'context', current);
  const clusterName = str(source, context, 'cluster', `contexts["${current}"].context`);
  if (!clusterName) fail(source, `contexts["${current}"].context.cluster is not set`);
  const cluster = named(source, doc, 'clusters', 'cluster', clusterName);
  const userName = str(source, context, 'user', `contexts["${current}"].context`);
  const user = userName ? named(source, doc, 'users', 'user', userName) : {};
  const cw = `clusters["${clusterName}"].cluster`;
  const uw = `users["${userName ?? ''}"].user`;

  if (user.exec !== undefined || user['auth-provider'] !== undefined || cluster['proxy-url'] !== undefined) return undefined;

  const skipTlsVerify = cluster['insecure-skip-tls-verify'] === true;
  const serverRaw = str(source, cluster, 'server', cw);
  if (!serverRaw) fail(source, `${cw}.server is not set`);
  const server = checkServer(source, `${cw}.server`, serverRaw, skipTlsVerify);
  const dir = source === '-' ? process.cwd() : dirname(source);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  const fileOrData = (obj: Obj, fileField: string, dataField: string, where: string): (() => Buffer | undefined) => {
    const data = str(source, obj, dataField, where);
    if (data) {
      const bytes = base64(source, data, `${where}.${dataField}`);
      return () => bytes;
    }
    const file = str(source, obj, fileField, where);
    if (!file) return () => undefined;
    const path = abs(file);
    if (!existsSync(path)) fail(source, `${where}.${fileField}: ${path} does not exist`);
    return () => readFileSync(path);
  };
  const ca = fileOrData(cluster, 'certificate-authority', 'certificate-authority-data', cw);
  const cert = fileOrData(user, 'client-certificate', 'client-certificate-data', uw);
  const key = fileOrData(user, 'client-key', 'client-key-data', uw);
  const hasCert = user['client-certificate'] !== undefined || user['client-certificate-data'] !== undefined;
  const hasKey = user['client-key'] !== undefined || user['client-key-data'] !== undefined;
  if (hasCert !== hasKey) fail(source, `${uw}: client-certificate and client-key go together (one is missing)`);
  const servername = str(source, cluster, 'tls-server-name', cw);

  const token = str(source, user, 'token', uw);
  const tokenFile = str(source, user, 'tokenFile', uw);
  const readToken = token ? () => token : tokenFile ? tokenFileReader(abs(tokenFile)) : undefined;
  const username = str(source, user, 'username', uw);
  const password = str(source, user, 'password', uw);
  const namespace = str(source, context, 'namespace', `contexts["${current}"].context`);

  return {
    server,
    namespace,
    source,
    delegated: false,
    auth: {
      tls: async () => {
        const c = ca();
        const crt = cert();
        const k = key();
        return { ...(c ? { ca: c } : {}), ...(crt ? { cert: crt } : {}), ...(k ? { key: k } : {}), ...(skipTlsVerify ? { rejectUnauthorized: false } : {}), ...(servername ? { servername } : {}) };
      },
      headers: async (): Promise<Record<string, string>> => {
        if (readToken) return { authorization: `Bearer ${readToken()}` };
        if (username !== undefined) return { authorization: `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}` };
        return {};
      },
    },
    clusterCaPem: () => ca()?.toString('utf8'),
  };
}

/**
 * A kubeconfig that only @kubernetes/client-node can serve (exec plugins, auth providers, proxies):
 * it is imported here, on first use, and its KubeConfig supplies the headers and TLS options of
 * every request, exactly as when meshca used it for everything.
 */
function delegatedConfig(source: string, load: (kc: import('@kubernetes/client-node').KubeConfig) => void, hints: Hints): KubeConfig {
  let loaded: Promise<import('@kubernetes/client-node').KubeConfig> | undefined;
  const kubeConfig = () =>
    (loaded ??= import('@kubernetes/client-node').then(({ KubeConfig: ClientNodeKubeConfig }) => {
      const kc = new ClientNodeKubeConfig();
      load(kc);
      return kc;
    }));
  const httpsOptions = async () => {
    const opts: import('node:https').RequestOptions & { headers?: Record<string, unknown> } = {};
    await (await kubeConfig()).applyToHTTPSOptions(opts);
    return opts;
  };
  return {
    server: hints.server,
    namespace: hints.namespace,
    source,
    delegated: true,
    auth: {
      tls: async () => {
        const o = await httpsOptions();
        const asBuffer = (v: unknown) => (v === undefined || v === null ? undefined : Buffer.isBuffer(v) ? v : Buffer.from(String(v)));
        const ca = asBuffer(o.ca);
        const cert = asBuffer(o.cert);
        const key = asBuffer(o.key);
        return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(o.rejectUnauthorized !== undefined ? { rejectUnauthorized: o.rejectUnauthorized } : {}), ...(o.servername ? { servername: o.servername } : {}) };
      },
      headers: async () => {
        const o = await httpsOptions();
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(o.headers ?? {})) if (typeof v === 'string') headers[k.toLowerCase()] = v;
        if (typeof o.auth === 'string' && !headers.authorization) headers.authorization = `Basic ${Buffer.from(o.auth).toString('base64')}`;
        return headers;
      },
      ...(hints.proxied ? { proxyDispatcher: async () => {
        const kc = await kubeConfig();
        const cluster = kc.getCurrentCluster();
        if (!cluster?.proxyUrl) return undefined;
        const o = await httpsOptions();
        // createDispatcher is private in client-node's types but is what its own requests use.
        const withDispatcher = kc as unknown as { createDispatcher(c: typeof cluster, o: object): Dispatcher | undefined };
        return withDispatcher.createDispatcher(cluster, { ca: o.ca, cert: o.cert, key: o.key, ...(o.rejectUnauthorized !== undefined ? { rejectUnauthorized: o.rejectUnauthorized } : {}), ...(o.servername ? { servername: o.servername } : {}) });
      } } : {}),
    },
    clusterCaPem: hints.caPem,
  };
}

/** The server and namespace of a kubeconfig client-node will serve, read without client-node. */
interface Hints {
  readonly server: string;
  readonly namespace: string | undefined;
  readonly proxied: boolean;
  readonly caPem: () => string | undefined;
}

function hintsOf(source: string, text: string, contextName: string | undefined): Hints {
  const doc = parseYaml(text) as Obj;
  const current = contextName ?? (doc['current-context'] as string);
  const context = named(source, doc, 'contexts', 'context', current);
  const clusterName = str(source, context, 'cluster', 'context')!;
  const cluster = named(source, doc, 'clusters', 'cluster', clusterName);
  const server = str(source, cluster, 'server', `clusters["${clusterName}"].cluster`);
  if (!server) fail(source, `clusters["${clusterName}"].cluster.server is not set`);
  const data = str(source, cluster, 'certificate-authority-data', 'cluster');
  const file = str(source, cluster, 'certificate-authority', 'cluster');
  const caPem = () => {
    if (data) return Buffer.from(data, 'base64').toString('utf8');
    if (!file) return undefined;
    const path = isAbsolute(file) ? file : resolve(dirname(source), file);
    return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  };
  return { server: trimSlash(server), namespace: str(source, context, 'namespace', 'context'), proxied: cluster['proxy-url'] !== undefined, caPem };
}

/** A kubeconfig file: its current context, or `context` when given. Throws BAD_CONFIG naming the field at fault. */
export function loadKubeconfigFile(path: string, context?: string): KubeConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    fail(path, `cannot read: ${describeError(err)}`, err);
  }
  return loadKubeconfigText(text, path, context);
}

/** A kubeconfig already read (`source`: its path, which relative file names are resolved against). */
export function loadKubeconfigText(text: string, source: string, context?: string): KubeConfig {
  const lean = parseKubeconfig(source, text, context);
  if (lean) return lean;
  const hints = hintsOf(source, text, context);
  return delegatedConfig(
    source,
    (kc) => {
      kc.loadFromString(text);
      if (context) kc.setCurrentContext(context);
    },
    hints,
  );
}

/**
 * kubectl's order: $KUBECONFIG, else ~/.kube/config, else the in-cluster configuration. A
 * $KUBECONFIG naming several files (merged) is left to client-node.
 */
export function loadDefaultKubeConfig(env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const list = env.KUBECONFIG?.split(delimiter).filter((p) => p !== '') ?? [];
  if (list.length === 1) return loadKubeconfigFile(list[0]!);
  if (list.length > 1) {
    const first = list.find((p) => existsSync(p));
    if (!first) fail('KUBECONFIG', `none of ${list.join(', ')} exists`);
    const hints = hintsOf(first, readFileSync(first, 'utf8'), undefined);
    return delegatedConfig('KUBECONFIG', (kc) => kc.loadFromDefault(), hints);
  }
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return loadKubeconfigFile(home);
  if (env.KUBERNETES_SERVICE_HOST) return loadInClusterConfig(env);
  throw new MeshcaError('BAD_CONFIG', 'no Kubernetes API server configured (no $KUBECONFIG, no ~/.kube/config, not in a pod)');
}
