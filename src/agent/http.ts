// The agent's HTTP face: /healthz (alive), /readyz (holds a valid certificate, else why not), /metrics. Built on
// the shared HTTP server of src/transport; answers carry no key material and no token.

import type { Registry } from '../observability/index.ts';
import { closeHttp, createHttpServer, listenHttp, type ListenAddress } from '../transport/index.ts';
import type { AgentStatus } from './workload_agent.ts';

export interface AgentHttpServer {
  readonly address: string;
  close(): Promise<void>;
}

export async function serveAgentHttp(listen: ListenAddress, status: () => AgentStatus, registry: Registry): Promise<AgentHttpServer> {
  const server = createHttpServer({
    registry,
    readiness: {
      certificate: () => {
        const s = status();
        if (s.ready) return { ok: true };
        if (s.permanentError) return { ok: false, reason: `the CA refuses this request and retrying will not change that: ${s.permanentError}` };
        return { ok: false, reason: s.lastError ?? 'no valid certificate yet' };
      },
    },
  });
  return { address: await listenHttp(server, listen, '--http-listen'), close: () => closeHttp(server) };
}
