// The agent's small HTTP face: /healthz (alive), /readyz (holds a valid certificate), /metrics.
// Answers carry no key material and no token.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MeshcaError } from '../errors/index.ts';
import type { Registry } from '../observability/index.ts';
import type { AgentStatus } from './workload_agent.ts';

export function parseListenAddress(text: string, setting: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new MeshcaError('BAD_CONFIG', `${setting} "${text}" is not host:port (e.g. 127.0.0.1:15020, [::1]:15020)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export interface AgentHttpServer {
  readonly address: string;
  close(): Promise<void>;
}

export async function serveAgentHttp(listen: string, status: () => AgentStatus, registry: Registry): Promise<AgentHttpServer> {
  const { host, port } = parseListenAddress(listen, '--http-listen');
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const s = status();
      const body = s.ready ? `ready: ${s.spiffeId} until ${new Date(s.notAfterMs!).toISOString()}\n` : `not ready: ${s.lastError ?? 'no certificate yet'}\n`;
      res.writeHead(s.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(body);
    } else if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500).end('metrics unavailable\n'),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /healthz, /readyz or /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new MeshcaError('BAD_CONFIG', `--http-listen ${listen}: cannot listen (${(err as NodeJS.ErrnoException).code ?? err.message})`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    address: `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
