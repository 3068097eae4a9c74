// Wires one agent together: CA client, certificate cache, SDS on the Unix socket, HTTP health and
// metrics. Used by `meshca agent` and by tests; reads files only through the paths it is given.

import { readFileSync } from 'node:fs';
import { Gauge, Counter } from 'prom-client';
import { MeshcaError } from '../errors/index.ts';
import { createRegistry, type Logger, type Registry } from '../observability/index.ts';
import { createSdsMetrics, SecretStore } from '../sds/index.ts';
import type { Clock } from '../time/index.ts';
import type { ListenAddress } from '../transport/index.ts';
import { createCaClient } from './ca_client.ts';
import { serveAgentHttp, type AgentHttpServer } from './http.ts';
import { canonicalBundle } from './issued.ts';
import { serveSdsOnSocket, type SdsSocketServer } from './sds_socket.ts';
import { WorkloadAgent, type AgentMetricsHooks } from './workload_agent.ts';

export interface AgentConfig {
  readonly caAddress: string;
  readonly caName?: string;
  readonly rootCertPath: string;
  readonly tokenFilePath: string;
  readonly sdsSocketPath: string;
  readonly outputDir?: string;
  readonly ttlMs: number;
  readonly bundlePollMs: number;
  /** host:port, or undefined for no HTTP server. */
  readonly httpListen?: ListenAddress;
  readonly clock: Clock;
  readonly log: Logger;
  readonly random?: () => number;
}

export interface RunningAgent {
  readonly agent: WorkloadAgent;
  readonly store: SecretStore;
  readonly sds: SdsSocketServer;
  readonly http?: AgentHttpServer;
  readonly registry: Registry;
  stop(): Promise<void>;
}

function readTokenFile(path: string): string {
  let token: string;
  try {
    token = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new MeshcaError('UNAUTHENTICATED', `cannot read the token file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  if (token === '') throw new MeshcaError('UNAUTHENTICATED', `the token file ${path} is empty`);
  return token;
}

function agentMetrics(registry: Registry): AgentMetricsHooks {
  const expiry = new Gauge({ name: 'meshca_agent_cert_expiry_timestamp_seconds', help: 'notAfter of the certificate the agent serves (Unix seconds)', registers: [registry] });
  const renewals = new Counter({ name: 'meshca_agent_renewals_total', help: 'certificate requests by result', labelNames: ['result'], registers: [registry] });
  return {
    renewed(svid) {
      expiry.set(svid.notAfterMs / 1000);
      renewals.inc({ result: 'ok' });
    },
    failed() {
      renewals.inc({ result: 'error' });
    },
  };
}

export async function startAgent(config: AgentConfig): Promise<RunningAgent> {
  const readRootFile = () => readFileSync(config.rootCertPath, 'utf8');
  // Fail at start, with the setting's name, rather than retrying forever against a missing root.
  try {
    canonicalBundle(readRootFile(), `--root-cert ${config.rootCertPath}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MeshcaError('BAD_CONFIG', code ? `--root-cert ${config.rootCertPath}: cannot read the file (${code})` : (err as Error).message, { cause: err });
  }
  const registry = createRegistry();
  const sdsMetrics = createSdsMetrics(registry, config.clock);
  const store = new SecretStore(config.clock);
  let agent: WorkloadAgent | undefined;
  const ca = createCaClient({
    address: config.caAddress,
    ...(config.caName ? { serverName: config.caName } : {}),
    trustedRootsPem: () => agent!.trustedRootsPem(),
    clock: config.clock,
  });
  agent = new WorkloadAgent({
    clock: config.clock,
    log: config.log,
    store,
    ca,
    readToken: () => readTokenFile(config.tokenFilePath),
    readRootFile,
    ttlMs: config.ttlMs,
    bundlePollMs: config.bundlePollMs,
    ...(config.outputDir ? { outputDir: config.outputDir } : {}),
    ...(config.random ? { random: config.random } : {}),
    metrics: agentMetrics(registry),
  });
  const sds = await serveSdsOnSocket(config.sdsSocketPath, store, config.log, sdsMetrics);
  let http: AgentHttpServer | undefined;
  try {
    if (config.httpListen) http = await serveAgentHttp(config.httpListen, () => agent!.status(), registry);
  } catch (err) {
    await sds.close();
    throw err;
  }
  agent.start();
  config.log.info({ sdsSocket: sds.path, http: http?.address, ca: config.caAddress }, 'meshca agent started; SDS requests wait for the first certificate');
  return {
    agent,
    store,
    sds,
    ...(http ? { http } : {}),
    registry,
    async stop() {
      agent!.stop();
      ca.close();
      await Promise.all([sds.close(), http?.close()]);
    },
  };
}
