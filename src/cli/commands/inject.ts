// `meshca inject -f FILE|-`: prints the manifests with the meshca agent added to every workload's
// pods (Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs), exactly as the
// webhook would add it; one line per workload on stderr says what was done.
import { readFileSync } from 'node:fs';
import { readSettingFile } from '../../config/index.ts';
import { MeshcaError } from '../../errors/index.ts';
import { injectManifests } from '../../inject/index.ts';
import { defineCommand } from '../command.ts';

export const injectCommand = defineCommand({
  path: ['inject'],
  usage: 'meshca inject -f FILE|- [--agent-image IMAGE] [--ca-addr meshca.meshca-system.svc:15012] [--audience meshca] > injected.yaml',
  options: { settings: ['file', 'agent-image', 'ca-addr', 'audience', 'json'], required: ['file'] },
  async run(v, ctx) {
    let text: string;
    if (v.file === '-') {
      try {
        text = readFileSync(0, 'utf8');
      } catch (err) {
        throw new MeshcaError('BAD_CONFIG', `-f -: cannot read standard input (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
      }
    } else {
      text = readSettingFile(v.file, '--file');
    }
    const { yaml, reports } = injectManifests(text, { image: v['agent-image'], caAddr: v['ca-addr'], audience: v.audience[0] ?? 'meshca' });
    ctx.stdout(yaml);
    for (const r of reports) ctx.stderr(`${r.kind}/${r.name}: ${r.injected ? 'agent injected' : `left alone (${r.reason})`}\n`);
    if (reports.length === 0) ctx.stderr('no Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob found; nothing injected\n');
    return 0;
  },
});
