// `meshca root …` against a running CA's admin API (--server): the same steps, taken by the CA for
// an --admins identity and recorded in its ledger under that identity. An own root is never plugged
// in this way: its key would cross the network.

import { MeshcaError } from '../../errors/index.ts';
import { formatRotationStatus, type RotationStatus } from '../../rotation/index.ts';
import { ADMIN_SERVICE } from '../../transport/index.ts';
import { report, type CommandContext } from '../command.ts';
import { connectRemote, type RemoteSettings } from '../remote.ts';

export type RootStep = 'status' | 'prepare' | 'activate' | 'retire' | 'rotate-intermediate';

const METHODS: Record<RootStep, string> = {
  status: 'Status',
  prepare: 'PrepareRoot',
  activate: 'ActivateRoot',
  retire: 'RetireRoot',
  'rotate-intermediate': 'RotateIntermediate',
};

interface StepResponse {
  outcome: string;
  key_id: string;
  previous_key_id: string;
  warning: string;
}

const short = (keyId: string): string => `${keyId.slice(0, 16)}…`;

function describeStep(step: RootStep, r: StepResponse): string {
  switch (`${step}:${r.outcome}`) {
    case 'prepare:prepared':
      return `prepared root ${short(r.key_id)} with its intermediate; it is in the trust bundle now and signs nothing yet. "meshca root status" says when "meshca root activate" is safe`;
    case 'activate:activated':
      return `activated root ${short(r.key_id)}: new certificates are signed by the new chain (every serve follows within 5 s); the previous root ${short(r.previous_key_id)} stays in the bundle until "meshca root retire"`;
    case 'retire:retired':
      return `retired root ${short(r.key_id)}: it has left the trust bundle and its private key was deleted`;
    case 'retire:nothing-to-retire':
      return 'nothing to retire: the trust bundle holds only roots in use (nothing changed)';
    case 'rotate-intermediate:activated':
      return `activated intermediate ${short(r.key_id)} under the active root; the previous one stays trusted until its certificates expire`;
    default:
      return `root ${short(r.key_id)}: ${r.outcome} (nothing changed)`;
  }
}

export async function runRemoteRootStep(
  step: RootStep,
  v: RemoteSettings & { readonly server: string; readonly json: boolean },
  ctx: CommandContext,
  request: object = {},
): Promise<number> {
  const remote = connectRemote(ADMIN_SERVICE, v, ctx.clock);
  try {
    if (step === 'status') {
      const answer = await remote.unary<{ status_json: string }>(METHODS.status, {});
      const status = JSON.parse(answer.status_json) as RotationStatus;
      if (v.json) ctx.stdout(`${JSON.stringify(status, null, 2)}\n`);
      else ctx.stdout(formatRotationStatus(status));
      return 0;
    }
    const r = await remote.unary<StepResponse>(METHODS[step], request);
    if (r.warning) ctx.stderr(`warning: ${r.warning}\n`);
    report(ctx, v, describeStep(step, r), { outcome: r.outcome, keyId: r.key_id, ...(r.previous_key_id ? { previousKeyId: r.previous_key_id } : {}), ...(r.warning ? { warning: r.warning } : {}), server: remote.address });
    return 0;
  } finally {
    remote.close();
  }
}

/** Root material stays on the key store's machine. */
export function refuseExternalRootRemotely(v: { readonly 'external-root-cert'?: string; readonly 'external-root-key'?: string }): void {
  if (v['external-root-cert'] !== undefined || v['external-root-key'] !== undefined) {
    throw new MeshcaError('BAD_CONFIG', '--external-root-cert cannot go with --server: the admin API never takes a root key; run "meshca root prepare --external-root-cert … --external-root-key …" where the key store is');
  }
}
