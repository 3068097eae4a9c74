// The agent's HTTP face: /healthz (alive), /readyz (holds a valid certificate), /metrics. Built on
// the CA's own HTTP server; answers carry no key material and no token.

import type { AddressInfo } from 'node:net';
import { MeshcaError } from '../errors/index.ts';
import type { Registry } from '../observability/index.ts';
import { createHttpServer, parseListenAddress } from '../server/index.ts';
import type { AgentStatus } from './workload_agent.ts';

export interface AgentHttpServer {
  readonly address: string;
  close(): Promise<void>;
}

export async function serveAgentHttp(listen: string, status: () => AgentStatus, registry: Registry): Promise<AgentHttpServer> {
  const { host, port } = parseListenAddress(listen, '--http-listen');
  const server = createHttpServer({
    registry,
    readiness: {
      certificate: () => {
        const s = status();
        return s.ready ? { ok: true } : { ok: false, reason: s.lastError ?? 'no valid certificate yet' };
      },
    },
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
