// The plain-HTTP side port: /healthz (process alive), /readyz (every readiness check passes) and
// /metrics (Prometheus). Extra routes (e.g. /bundle) are added by name. Answers GET/HEAD only.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

// Not `import { createServer } from 'node:http'`: importing node:http as an ES module reads every
// export, and its lazy WebSocket getters then load undici, Node's fetch (~6 MB of private memory
// and ~20 ms of start-up in every agent; docs/performance.md, Footprint).
const { createServer } = process.getBuiltinModule('node:http');

export type ReadinessCheck = () => { ok: true } | { ok: false; reason: string };
export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface FailingCheck {
  readonly check: string;
  readonly reason: string;
}

/** The readiness checks that fail now, with their reasons. */
export function failingChecks(readiness: Readonly<Record<string, ReadinessCheck>>): FailingCheck[] {
  return Object.entries(readiness).flatMap(([check, run]) => {
    const result = run();
    return result.ok ? [] : [{ check, reason: result.reason }];
  });
}

export interface HttpServerOptions {
  /** What /metrics answers: a registry, or anything that renders one (a cluster's aggregate). */
  readonly registry: Pick<Registry, 'metrics' | 'contentType'>;
  readonly readiness: Readonly<Record<string, ReadinessCheck>>;
  /** Checks answered elsewhere (a cluster's workers), asked on each /readyz after `readiness`. */
  readonly moreFailing?: () => Promise<readonly FailingCheck[]>;
  readonly routes?: Readonly<Record<string, Route>>;
  /**
   * Where the reasons of failing readiness checks go when /readyz must not say them (the CA's port
   * is unauthenticated and a reason may name a database host): then the answer names only the
   * failing checks, and this is told the reasons each time they change. Without it, /readyz says
   * the reasons (the agent's port is local to the pod).
   */
  readonly onNotReady?: (failing: readonly FailingCheck[]) => void;
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

export function createHttpServer(opts: HttpServerOptions): Server {
  let lastReported = '';
  const server = createServer(async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n');
    const path = (req.url ?? '/').split('?')[0];
    try {
      switch (path) {
        case '/healthz':
          return send(res, 200, 'ok\n');
        case '/readyz': {
          const failing = [...failingChecks(opts.readiness), ...((await opts.moreFailing?.()) ?? [])];
          const reported = JSON.stringify(failing);
          if (opts.onNotReady && reported !== lastReported && failing.length > 0) opts.onNotReady(failing);
          lastReported = reported;
          if (failing.length === 0) return send(res, 200, 'ready\n');
          const lines = failing.map((f) => (opts.onNotReady ? f.check : `${f.check}: ${f.reason}`));
          return send(res, 503, `not ready\n${lines.join('\n')}\n`);
        }
        case '/metrics':
          return send(res, 200, await opts.registry.metrics(), opts.registry.contentType);
        default: {
          const route = path ? opts.routes?.[path] : undefined;
          if (route) return await route(req, res);
          return send(res, 404, 'not found\n');
        }
      }
    } catch {
      if (!res.headersSent) send(res, 500, 'internal error\n');
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  return server;
}
