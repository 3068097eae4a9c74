// `meshca agent`: one per pod. Gets the workload's certificate from the CA with its token, serves
// it to Envoy over SDS on a Unix socket, renews it before it expires. Runs until SIGINT/SIGTERM.

import { startAgent } from '../../agent/index.ts';
import { MeshcaError } from '../../errors/index.ts';
import { createLogger } from '../../observability/index.ts';
import { formatDuration, untilAborted } from '../../time/index.ts';
import { defineCommand } from '../command.ts';

/** The agent's own HTTP port, beside the CA's 15014 (and Istio's agent on 15020). */
const AGENT_HTTP_LISTEN = { host: '127.0.0.1', port: 15020 };

export const agentCommand = defineCommand({
  path: ['agent'],
  usage: 'meshca agent --root-cert FILE [--ca-addr meshca.meshca-system.svc:15012] [--token-file F] [--sds-socket PATH] [--ttl 1h] [--output-dir DIR]',
  options: {
    settings: ['ca-addr', 'ca-name', 'root-cert', 'token-file', 'sds-socket', 'output-dir', 'ttl', 'bundle-poll', 'http-listen', 'log-level'],
    defaults: { 'http-listen': AGENT_HTTP_LISTEN },
    required: ['root-cert'],
  },
  async run(v, ctx) {
    if (v.ttl % 1000 !== 0) throw new MeshcaError('BAD_CONFIG', `--ttl ${formatDuration(v.ttl)} must be whole seconds`);
    if (v['bundle-poll'] < 1000) throw new MeshcaError('BAD_CONFIG', `--bundle-poll ${formatDuration(v['bundle-poll'])} is too short; use at least 1s`);
    const log = createLogger(v['log-level']);
    const running = await startAgent({
      caAddress: v['ca-addr'],
      ...(v['ca-name'] ? { caName: v['ca-name'] } : {}),
      rootCertPath: v['root-cert'],
      tokenFilePath: v['token-file'],
      sdsSocketPath: v['sds-socket'],
      ...(v['output-dir'] ? { outputDir: v['output-dir'] } : {}),
      ttlMs: v.ttl,
      bundlePollMs: v['bundle-poll'],
      httpListen: v['http-listen'],
      clock: ctx.clock,
      log,
    });
    ctx.stderr(`meshca agent: serving SDS on ${running.sds.path}${running.http ? `, health on http://${running.http.address}` : ''}\n`);
    await untilAborted(ctx.signal);
    await running.stop();
    log.flush?.();
    return 0;
  },
});
