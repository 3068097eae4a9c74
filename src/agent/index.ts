// Public face of src/agent: `meshca agent`'s certificate cache, CA client and SDS socket.
// The private key lives in this process's memory; only --output-dir ever writes it.
export { startAgent, type AgentConfig, type RunningAgent } from './run.ts';
export { WorkloadAgent, type WorkloadAgentOptions, type AgentStatus } from './workload_agent.ts';
export { createCaClient, type CaClient, type CaCredential, type CertificateRequest } from './ca_client.ts';
export { acceptIssuedChain, type HeldSvid } from './issued.ts';
export { renewAtMs, backoffDelayMs, RENEW_RATIO, RENEW_JITTER, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS } from '../ca/renewal/index.ts';
export { serveSdsOnSocket, SDS_SOCKET_MODE } from './sds_socket.ts';
