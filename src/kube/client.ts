// A small typed Kubernetes REST client on node:https: JSON GET/POST/PUT/PATCH/DELETE and watches,
// over one keep-alive connection pool (pool.ts), authenticated as the kubeconfig says (config.ts).
// A proxied cluster's requests go through client-node's undici dispatcher (loaded only then).
// Failures carry the HTTP status (KubeApiError), so callers decide on 404/409/403/429/5xx exactly
// as they did with client-node's ApiException. Responses are read up to a size limit.

import type { IncomingHttpHeaders } from 'node:http';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { readBounded } from '../transport/body/index.ts';
import { systemClock, type Clock } from '../time/index.ts';
import type { KubeConfig } from './config.ts';
import { createApiConnectionPool, type ApiConnectionPool } from './pool.ts';

/** A response body larger than this is refused (lists of every pod in a big cluster pass a larger one). */
export const DEFAULT_RESPONSE_LIMIT_BYTES = 64 * 1024 * 1024;
/** One watch event larger than this ends the watch (etcd keeps objects under 1.5 MiB). */
export const WATCH_EVENT_LIMIT_BYTES = 16 * 1024 * 1024;
/** A watch that brings nothing for this long is ended (the caller restarts it), as client-node did. */
export const WATCH_IDLE_TIMEOUT_MS = 30_000;

/** The API server answered with an error status. `status` is the HTTP status. */
export class KubeApiError extends Error {
  readonly status: number;
  /** Kubernetes' Status reason (NotFound, Conflict, Forbidden…), when the body had one. */
  readonly reason: string | undefined;
  /** Retry-After in seconds (429, some 5xx), when sent. */
  readonly retryAfterSeconds: number | undefined;

  constructor(method: string, path: string, status: number, body: string, retryAfter: string | undefined) {
    let reason: string | undefined;
    let detail = '';
    try {
      const parsed = JSON.parse(body) as { reason?: unknown; message?: unknown };
      if (typeof parsed.reason === 'string') reason = parsed.reason;
      if (typeof parsed.message === 'string') detail = `: ${parsed.message}`;
    } catch {
      // Not a Status object: the code is what matters.
    }
    super(`Kubernetes API ${method} ${path.split('?')[0]}: HTTP ${status}${reason ? ` ${reason}` : ''}${detail}`);
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
    const seconds = retryAfter === undefined ? NaN : Number(retryAfter);
    this.retryAfterSeconds = Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
  }
}

/** The HTTP status of a failed Kubernetes API call, if it got that far. */
export function kubeStatusOf(err: unknown): number | undefined {
  return err instanceof KubeApiError ? err.status : undefined;
}

export type Query = Readonly<Record<string, string | undefined>>;

export interface RequestOptions {
  readonly query?: Query;
  readonly body?: unknown;
  /** PATCH: application/merge-patch+json (default), application/json-patch+json, application/strategic-merge-patch+json. */
  readonly contentType?: string;
  readonly signal?: AbortSignal;
  readonly maxBytes?: number;
}

export type WatchPhase = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR' | (string & {});

function withQuery(path: string, query: Query | undefined): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v);
  const q = params.toString();
  return q ? `${path}${path.includes('?') ? '&' : '?'}${q}` : path;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface Response {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>;
  readonly body: Readable;
}

async function readLimited(body: Readable, maxBytes: number, what: string): Promise<string> {
  return (await readBounded(body, maxBytes, () => new Error(`${what}: the response is larger than ${maxBytes} bytes`))).toString('utf8');
}

function header(headers: Response['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export class KubeClient {
  readonly config: KubeConfig;
  readonly #pool: ApiConnectionPool;
  /** Watches open now: close() ends them (a watch only ends on its own after WATCH_IDLE_TIMEOUT_MS). */
  readonly #watches = new Set<AbortController>();

  constructor(config: KubeConfig, opts: { clock?: Clock; connections?: number } = {}) {
    this.config = config;
    this.#pool = createApiConnectionPool({ kubeConfig: config, clock: opts.clock ?? systemClock, ...(opts.connections !== undefined ? { connections: opts.connections } : {}) });
  }

  async #send(method: HttpMethod, path: string, opts: { body?: string; contentType?: string; signal?: AbortSignal; accept?: string }): Promise<Response> {
    const headers: Record<string, string> = { accept: opts.accept ?? 'application/json', ...(await this.config.auth.headers()) };
    if (opts.body !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(opts.body));
    }
    const url = new URL(this.config.server + path);
    const pooled = await this.#pool.dispatcher();
    if (!pooled) {
      // A proxied cluster (HTTP or SOCKS proxy): client-node's dispatcher, on undici, as before.
      const [{ request }, dispatcher] = await Promise.all([import('undici'), this.config.auth.proxyDispatcher?.()]);
      const res = await request(url, { method, headers, ...(opts.body !== undefined ? { body: opts.body } : {}), ...(opts.signal ? { signal: opts.signal } : {}), ...(dispatcher ? { dispatcher } : {}) });
      return { statusCode: res.statusCode, headers: res.headers, body: res.body };
    }
    const transport = process.getBuiltinModule(url.protocol === 'http:' ? 'node:http' : 'node:https') as typeof import('node:https');
    return new Promise<Response>((resolve, reject) => {
      const req = transport.request(url, { method, headers, agent: pooled.agent as import('node:https').Agent, ...(opts.signal ? { signal: opts.signal } : {}) }, (res) => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res }));
      req.once('error', reject);
      req.end(opts.body);
    });
  }

  /** One JSON call; resolves the parsed body of a 2xx answer, throws KubeApiError on any other. */
  async request<T>(method: HttpMethod, path: string, opts: RequestOptions = {}): Promise<T> {
    const full = withQuery(path, opts.query);
    const contentType = opts.contentType ?? (method === 'PATCH' ? 'application/merge-patch+json' : undefined);
    const res = await this.#send(method, full, {
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      ...(contentType ? { contentType } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const text = await readLimited(res.body, opts.maxBytes ?? DEFAULT_RESPONSE_LIMIT_BYTES, `Kubernetes API ${method} ${path}`);
    if (res.statusCode < 200 || res.statusCode >= 300) throw new KubeApiError(method, full, res.statusCode, text, header(res.headers, 'retry-after'));
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  get<T>(path: string, opts?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, opts);
  }
  create<T>(path: string, body: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, { ...opts, body });
  }
  replace<T>(path: string, body: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>('PUT', path, { ...opts, body });
  }
  patch<T>(path: string, body: unknown, opts?: RequestOptions): Promise<T> {
    return this.request<T>('PATCH', path, { ...opts, body });
  }
  delete<T>(path: string, opts?: RequestOptions): Promise<T> {
    return this.request<T>('DELETE', path, opts);
  }

  /**
   * Watches `path` (a collection) from `query.resourceVersion`: `onEvent` gets every event's type
   * and object (BOOKMARK and ERROR included), `done` is called once when the watch ends for any
   * reason (server close, error status, idle timeout, abort). Resolves the controller that aborts it
   * once the request is made; never rejects (a failure goes to `done`), as client-node's Watch.
   */
  async watch<T>(path: string, query: Query, onEvent: (phase: WatchPhase, object: T) => void, done: (err: unknown) => void): Promise<AbortController> {
    const controller = new AbortController();
    this.#watches.add(controller);
    let finished = false;
    let idle: NodeJS.Timeout | undefined;
    const finish = (err: unknown) => {
      if (finished) return;
      finished = true;
      this.#watches.delete(controller);
      if (idle) clearTimeout(idle);
      controller.abort();
      done(err);
    };
    // Aborted by the caller or by close(): done now, not when the socket has wound down.
    controller.signal.addEventListener('abort', () => finish(controller.signal.reason), { once: true });
    const touch = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => finish(new DOMException('the watch was idle too long', 'TimeoutError')), WATCH_IDLE_TIMEOUT_MS);
      idle.unref();
    };
    try {
      touch();
      const res = await this.#send('GET', withQuery(path, { ...query, watch: 'true' }), { signal: controller.signal });
      if (res.statusCode !== 200) {
        const text = await readLimited(res.body, 64 * 1024, `Kubernetes API watch ${path}`).catch(() => '');
        throw new KubeApiError('GET', path, res.statusCode, text, header(res.headers, 'retry-after'));
      }
      touch();
      const body = res.body;
      body.on('data', touch);
      body.on('error', finish);
      body.on('close', () => finish(null));
      // A response cut short (the server or an abort) ends the watch like an error would.
      body.on('aborted', () => finish(new Error(`Kubernetes API watch ${path}: the connection was cut`)));
      const lines = createInterface({ input: body, crlfDelay: Infinity });
      let pending = 0;
      body.on('data', (chunk: Buffer) => {
        pending += chunk.length;
        if (pending > WATCH_EVENT_LIMIT_BYTES) finish(new Error(`Kubernetes API watch ${path}: an event is larger than ${WATCH_EVENT_LIMIT_BYTES} bytes`));
      });
      lines.on('line', (line: string) => {
        pending = 0;
        if (finished || line === '') return;
        let event: { type?: unknown; object?: unknown };
        try {
          event = JSON.parse(line) as typeof event;
        } catch {
          return;
        }
        if (typeof event.type === 'string') onEvent(event.type, event.object as T);
      });
      // readline re-emits the body's errors (an abort among them) on the interface.
      lines.on('error', finish);
      lines.on('close', () => finish(null));
    } catch (err) {
      finish(err);
    }
    return controller;
  }

  /** Ends the open watches and closes the connection pool once the other requests in flight have finished. */
  close(): Promise<void> {
    for (const w of [...this.#watches]) w.abort();
    return this.#pool.close();
  }
}

export const encodePath = (s: string): string => encodeURIComponent(s);
