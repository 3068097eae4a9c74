// `meshca request`: send a CSR to a running CA's CreateCertificate and print the chain — what the
// agent does, by hand, for operators and examples. Authenticates with a token (--token-file) or,
// to renew, over mutual TLS with a certificate the CA issued (--cert, --key). Uses the agent's CA client.
import { readSettingFile } from '../../config/index.ts';
import { createCaClient } from '../../agent/index.ts';
import { describeError, isMeshcaError, MeshcaError } from '../../errors/index.ts';
import { defineCommand } from '../command.ts';
import { clientCredentialOf } from '../remote.ts';

export const requestCommand = defineCommand({
  path: ['request'],
  usage: 'meshca request --csr FILE --root-cert FILE (--token-file FILE | --cert FILE --key FILE) [--ca-addr HOST:PORT] [--ttl 1h] [--ca-name NAME]',
  options: {
    settings: ['csr', 'token-file', 'cert', 'key', 'ca-addr', 'root-cert', 'ca-name', 'ttl', 'json'],
    required: ['csr', 'root-cert'],
  },
  async run(v, ctx) {
    const csrPem = readSettingFile(v.csr, '--csr');
    const roots = readSettingFile(v['root-cert'], '--root-cert');
    const credential = clientCredentialOf(v);
    const client = createCaClient({
      address: v['ca-addr'],
      ...(v['ca-name'] ? { serverName: v['ca-name'] } : {}),
      trustedRootsPem: () => roots,
      clock: ctx.clock,
    });
    try {
      const chain = await client.createCertificate({ csrPem, ttlSeconds: Math.round(v.ttl / 1000), credential });
      if (v.json) ctx.stdout(`${JSON.stringify({ chain }, null, 2)}\n`);
      else ctx.stdout(chain.join(''));
      return 0;
    } catch (err) {
      if (isMeshcaError(err)) throw err;
      throw new MeshcaError('CA_UNAVAILABLE', `the CA at ${v['ca-addr']} could not be asked: ${describeError(err)}`, { cause: err });
    } finally {
      client.close();
    }
  },
});
